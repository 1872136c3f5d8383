"""Data: TFDS / local files -> cached uint8 arrays (sources) -> device batches in jit (pipeline)."""

from jaxland.data.pipeline import Augment as Augment
from jaxland.data.pipeline import augment as augment
from jaxland.data.pipeline import augment_settings as augment_settings
from jaxland.data.pipeline import batch_sharding as batch_sharding
from jaxland.data.pipeline import check_batch_size as check_batch_size
from jaxland.data.pipeline import epoch_batches as epoch_batches
from jaxland.data.pipeline import epoch_order as epoch_order
from jaxland.data.pipeline import eval_batch as eval_batch
from jaxland.data.pipeline import eval_batches as eval_batches
from jaxland.data.pipeline import make_mesh as make_mesh
from jaxland.data.pipeline import normalize as normalize
from jaxland.data.pipeline import replicated as replicated
from jaxland.data.pipeline import steps_per_epoch as steps_per_epoch
from jaxland.data.pipeline import train_batch as train_batch
from jaxland.data.sources import DATASETS as DATASETS
from jaxland.data.sources import Dataset as Dataset
from jaxland.data.sources import DataUnavailableError as DataUnavailableError
from jaxland.data.sources import load_dataset as load_dataset
