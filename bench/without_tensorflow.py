"""Runs a bench script where TensorFlow is not installed (e.g. a GPU image with JAX only).

clu's metric writers import TensorFlow's summary writer at load; jaxland.runtime's stand-in for
that one module (clu_without_tensorflow) is installed before the script runs as __main__, so the
script may import clu (or jaxland.train.loop) first. Any jaxland import through jaxland.data or
jaxland.output.metrics installs it as well. The script also needs ml_collections and clu (pure
Python wheels, `pip download --no-deps` them); tensorboardX only if it writes TensorBoard files.
Run:    python bench/without_tensorflow.py bench/repulsion.py --models=mlp
"""

import os
import runpy
import sys

sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # The repo.
from jaxland import runtime  # noqa: E402

runtime.clu_without_tensorflow()
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))  # The script's own folder.
runpy.run_path(sys.argv[0], run_name='__main__')
