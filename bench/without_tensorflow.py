"""Runs a bench script where TensorFlow is not installed (e.g. a GPU image with JAX only).

clu's metric writers import TensorFlow's summary writer at load; benchmarks write no summaries, so
that one module is replaced by an empty stand-in before the script runs as __main__. The script
also needs ml_collections and clu (pure Python wheels, `pip download --no-deps` them).
Run:    python bench/without_tensorflow.py bench/repulsion.py --models=mlp
"""

import os
import runpy
import sys
import types

stub = types.ModuleType('clu.metric_writers.summary_writer')
stub.SummaryWriter = None
sys.modules['clu.metric_writers.summary_writer'] = stub
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))  # The script's own folder.
runpy.run_path(sys.argv[0], run_name='__main__')
