"""Multi-process data parallelism: cluster detection, and two CPU processes training as one."""

import json
import os

import numpy as np
import pytest

from configs import default
from jaxland.train import loop
from launch import distributed, local

OVERRIDES = {
  'data.name': 'digits',
  'data.batch_size': 32,
  'data.eval_batch_size': 96,
  'model.hidden_sizes': (32,),
  'optim.learning_rate': 0.05,
  'train.num_epochs': 1,
  'train.max_steps': 30,
  'train.log_every_steps': 10,
}


def test_cluster_spec_from_launcher_variables():
  env = {'JAXLAND_COORDINATOR': 'h:1234', 'JAXLAND_NUM_PROCESSES': '4', 'JAXLAND_PROCESS_ID': '3'}
  assert distributed.cluster_spec(env) == {
    'coordinator_address': 'h:1234',
    'num_processes': 4,
    'process_id': 3,
  }
  with pytest.raises(ValueError, match='JAXLAND_NUM_PROCESSES'):
    distributed.cluster_spec({'JAXLAND_COORDINATOR': 'h:1'})
  with pytest.raises(ValueError, match=r'process_id 4 must be in \[0, num_processes=4\)'):
    distributed.cluster_spec({**env, 'JAXLAND_PROCESS_ID': '4'})


def test_cluster_spec_from_slurm():
  step = {'SLURM_JOB_ID': '7', 'SLURM_STEP_NODELIST': 'n[1-2]', 'SLURM_PROCID': '1'}
  assert distributed.cluster_spec({**step, 'SLURM_NTASKS': '2'}) == {}  # jax reads SLURM_*.
  assert distributed.cluster_spec({**step, 'SLURM_NTASKS': '1'}) is None  # e.g. an array task.
  assert distributed.cluster_spec({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '2'}) is None  # No srun.
  assert distributed.cluster_spec({}) is None


def test_process_env_shares_devices():
  env = local.process_env(
    1, 2, 999, [], 3, base={'XLA_FLAGS': '--foo --xla_force_host_platform_device_count=8'}
  )
  assert env['XLA_FLAGS'] == '--foo --xla_force_host_platform_device_count=3'
  assert env['JAXLAND_COORDINATOR'] == 'localhost:999' and env['JAXLAND_PROCESS_ID'] == '1'
  gpu_env = local.process_env(1, 2, 999, ['0', '1', '2', '3'], 1, base={})
  assert gpu_env['CUDA_VISIBLE_DEVICES'] == '1,3'


def _losses(run_dir):
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  return np.array([r['train/loss'] for r in records if 'train/loss' in r])


def test_two_processes_train_like_one(tmp_path, capfd):
  # Reference: this process, one mesh over its 8 CPU devices.
  config = default.get_config()
  for key, value in OVERRIDES.items():
    section, name = key.split('.')
    config[section][name] = value
  one = loop.train_and_evaluate(config, str(tmp_path / 'one'))
  # Two processes of 2 CPU devices each, joined by jax.distributed: a global mesh of 4.
  args = [
    '--config=configs/default.py',
    f'--workdir={tmp_path / "two"}',
    *(f'--config.{k}={v}' for k, v in OVERRIDES.items()),
  ]
  assert local.launch(args, num_processes=2, cpu_devices=2) == 0
  out = capfd.readouterr().out
  assert '[launch] process 0 of 2: 2 local of 4 devices' in out
  assert '[launch] process 1 of 2: 2 local of 4 devices' in out
  with open(tmp_path / 'two' / 'summary.json') as f:
    two = json.load(f)
  assert two['status'] == 'done' and two['step'] == one['step'] == 30
  np.testing.assert_allclose(two['final_test_loss'], one['final_test_loss'], rtol=1e-5)
  assert two['final_test_accuracy'] == pytest.approx(one['final_test_accuracy'], abs=1e-6)
  losses_one, losses_two = _losses(tmp_path / 'one'), _losses(tmp_path / 'two')
  assert len(losses_two) == len(losses_one) == 3  # Only process 0 writes metrics.jsonl.
  np.testing.assert_allclose(losses_two, losses_one, rtol=1e-5)
