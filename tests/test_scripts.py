"""Every results/ and bench/ script imports on the current package (so a moved module shows here,
not months later), and every shell script parses. Running them is their SMOKE / --smoke forms'
job (WORKSPACE.md), too slow for this suite."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCHERS = {'without_tensorflow.py'}  # Their top level is their work (they exec a script).
PYTHON_SCRIPTS = sorted(
  p
  for d in ('results', 'bench')
  for p in (ROOT / d).rglob('*.py')
  if p.name != '__init__.py' and p.name not in LAUNCHERS and not p.name.startswith('torch_')
)  # bench/torch_*.py run under the separate PyTorch venv (bench-only; not a project dependency).
SHELL_SCRIPTS = sorted(p for d in ('results', 'launch') for p in (ROOT / d).rglob('*.sh'))


@pytest.mark.parametrize('path', PYTHON_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_imports(path, monkeypatch):
  monkeypatch.syspath_prepend(str(path.parent))
  spec = importlib.util.spec_from_file_location(f'script_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  monkeypatch.setattr(sys, 'argv', [str(path)])
  spec.loader.exec_module(module)  # Top level only: every script keeps its work under __main__.


@pytest.mark.parametrize('path', SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_script_parses(path):
  subprocess.run(['bash', '-n', str(path)], check=True)


@pytest.mark.parametrize('variant', ['jpeg75', 'jpeg75,cpu'])
def test_every_cifar_question_is_a_valid_run(variant):
  """results/cifar/questions.py's runs (issue 16) wait for hardware: each config validates now
  (as jaxland.main would before writing anything) on all 50k training images."""
  from jaxland import tasks

  spec = importlib.util.spec_from_file_location(
    'cifar_questions', ROOT / 'results/cifar/questions.py'
  )
  questions = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(questions)
  chosen = questions.questions(variant, lr_max=2.0)
  assert set(chosen) == {'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8'}
  for qid, (_, runs) in chosen.items():
    for name, run in runs.items():
      config = questions.config_of(variant, run)
      tasks.validate(config, num_devices=1)
      assert config.data.train_subset == 0 and 'jpeg75' in str(config.data), (qid, name)
