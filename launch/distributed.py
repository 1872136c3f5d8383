"""Joins this process to a multi-process JAX run, when the environment asks for one.

Sources, in order: explicit arguments; the JAXLAND_COORDINATOR / JAXLAND_NUM_PROCESSES /
JAXLAND_PROCESS_ID variables (set by `launch.local`); a SLURM step with more than one task (srun
sets SLURM_NTASKS, SLURM_PROCID, SLURM_STEP_NODELIST; jax derives the coordinator from them).
Otherwise nothing happens and the run uses this host's devices only. After initialize(),
`jax.devices()` lists every process's devices, so the training loop's ('data',) mesh spans all
hosts. CPU processes talk through gloo (jax's default CPU collectives since 0.5).
"""

import os

ENV_COORDINATOR = 'JAXLAND_COORDINATOR'
ENV_NUM_PROCESSES = 'JAXLAND_NUM_PROCESSES'
ENV_PROCESS_ID = 'JAXLAND_PROCESS_ID'
SLURM_STEP_VARS = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID')


def cluster_spec(env=None, coordinator=None, num_processes=None, process_id=None) -> dict | None:
  """The initialize() arguments this environment asks for; None for a single-process run.

  Returns {} for a SLURM step (jax reads the SLURM variables itself) and a dict with
  coordinator_address, num_processes and process_id otherwise.
  """
  env = os.environ if env is None else env
  coordinator = coordinator or env.get(ENV_COORDINATOR)
  if coordinator:
    try:
      num = int(num_processes if num_processes is not None else env[ENV_NUM_PROCESSES])
      pid = int(process_id if process_id is not None else env[ENV_PROCESS_ID])
    except KeyError as e:
      raise ValueError(
        f'coordinator {coordinator!r} given without {e.args[0]}: set {ENV_NUM_PROCESSES} and '
        f'{ENV_PROCESS_ID} (or pass num_processes and process_id)'
      ) from e
    if not 0 <= pid < num:
      raise ValueError(f'process_id {pid} must be in [0, num_processes={num})')
    return {'coordinator_address': coordinator, 'num_processes': num, 'process_id': pid}
  if all(v in env for v in SLURM_STEP_VARS) and int(env['SLURM_NTASKS']) > 1:
    return {}
  return None


def initialize(**kwargs) -> bool:
  """Calls jax.distributed.initialize() when cluster_spec() says so; True when it did."""
  spec = cluster_spec(**kwargs)
  if spec is None:
    return False
  import jax

  jax.distributed.initialize(**spec)
  print(
    f'[launch] process {jax.process_index()} of {jax.process_count()}: '
    f'{jax.local_device_count()} local of {jax.device_count()} devices',
    flush=True,
  )
  return True
