"""Task `spectrum`: Hessian eigenvalues, eigenvectors, density and trace of a trained run.

Run:    python -m jaxland.main --config=configs/spectrum.py --config.checkpoint=<run dir>[:step] \
          --workdir=<run dir>   [--config.spectrum.steps='(0,200,1000)']
Expect: <workdir>/spectrum/<step>/spectrum.npz (eigenvalues [20], eigenvectors [20, n_params],
        residuals, density_grid, density, trace, ...), summary.json, density.png,
        top_eigenvalues.png per step; across steps <workdir>/spectrum/top_eigenvalues.png,
        density.png, trace.png, summary.json; TensorBoard scalars spectrum/top_<i>, spectrum/trace.
        A printed line per step: "spectrum step 1000: top [..], trace .. +- .., T s".
        For configs/fashion_mlp.py after 2 epochs on 5,000 examples (results/spectrum/): top
        eigenvalue about 6, trace about 70, a few outliers above a bulk near 0; ~80 s on 2 CPUs.
The run's model and data come from <run dir>/config.json: this file's data/model sections are
not used. Steps come from checkpoints or trajectory/params_XXXXXXXX.npz files (params only: see
jaxland/spectrum.py for BatchNorm statistics then). Options: config.spectrum in configs/default.py
(kind=ggn, bn_mode=train, block='Dense_0', float64=True, num_examples, lanczos_steps, ...).

Args: `:smoke` cuts every count (seconds on CPU); `:ggn`, `:bntrain`, `:float64` set those options;
`n=<examples>` sets num_examples (default 5000, minutes on a CPU; n=0: every training example).
E.g. --config=configs/spectrum.py:smoke,n=500
"""

from configs import common, default
from jaxland import spectrum


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, ggn=False, bntrain=False, float64=False, n=5000)
  config = default.get_config()
  config.task = 'spectrum'
  config.spectrum = spectrum.defaults()
  s = config.spectrum
  s.num_examples = args.n
  s.top_k = 20
  s.lanczos_steps = 80
  s.slq_probes = 8
  s.slq_steps = 60
  s.trace_probes = 50
  if args.ggn:
    s.kind = 'ggn'
  if args.bntrain:
    s.bn_mode = 'train'
  if args.float64:
    s.float64 = True
  if args.smoke:
    s.num_examples = min(args.n, 512) if args.n else 512
    s.top_k = 5
    s.bottom_k = 2
    s.lanczos_steps = 20
    s.slq_probes = 2
    s.slq_steps = 20
    s.trace_probes = 4
  return config
