# Copyright 2026 seg_perception developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Lint tier: flake8 with the ament_flake8 settings over the whole package.

ament_flake8's configuration: 99-column lines, single quotes (flake8-quotes), the google import
order (not enforced here: flake8-import-order is not installed), and B902, C816, D100-D107, D203,
D212, D404, I202 ignored. Docstrings (D codes) are checked by test_pep257.py instead.
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ('seg_perception', 'test', 'launch', 'setup.py', 'benchmarks')
FLAKE8_ARGS = ['--max-line-length=99', '--inline-quotes=single', '--multiline-quotes="""',
               '--docstring-quotes="""', '--extend-ignore=B902,C816,D,I202',
               '--exclude=.venv,build,install,log,out,__pycache__', '--show-source']


def run_flake8(paths, cwd=REPO):
    """Run flake8 with the ament settings; return the completed process."""
    return subprocess.run([sys.executable, '-m', 'flake8', *FLAKE8_ARGS, *paths], cwd=cwd,
                          capture_output=True, text=True)


def test_flake8():
    targets = [t for t in TARGETS if os.path.exists(os.path.join(REPO, t))]
    result = run_flake8(targets)
    assert result.returncode == 0, f'flake8 found violations:\n{result.stdout}{result.stderr}'


def test_flake8_catches_ament_violations(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('x = "double quotes"\ny = 1  # ' + 'long ' * 20 + '\n')
    result = run_flake8([str(bad)], cwd=tmp_path)
    assert result.returncode == 1
    assert 'Q000' in result.stdout and 'E501' in result.stdout
