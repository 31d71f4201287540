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
The wheel, installed into a fresh venv, runs the demo and ``evaluate`` from outside the checkout.

``pip install .`` must ship everything the tools default to (the bundled model, config, the
CamVid sample frames) and find it under ``<venv>/share/seg_perception``, not in the source tree.
The wheel is built from a copy of the working tree (no build/ left in the checkout). The new venv
sees the test environment's dependencies through a ``.pth`` path line: a path line adds the folder
to ``sys.path`` without running that folder's own ``.pth`` files, so the editable install of the
checkout there (``__editable__.seg_perception-*.pth``) cannot shadow the installed wheel.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = shutil.ignore_patterns('.venv', '.git', 'build', 'install', 'log', 'out', 'runs',
                              'training', '__pycache__', '*.egg-info', '.pytest_cache')
SHARE_SAMPLES = os.path.join('share', 'seg_perception', 'data', 'samples', 'camvid')
SAMPLE_COUNT = 10


def run(command, **kwargs):
    """Run a command; fail the test with its output tail when it does not exit 0."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, (f'{command} exited {done.returncode}:\n'
                                  f'{done.stdout[-3000:]}\n{done.stderr[-3000:]}')
    return done


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    """Build the wheel, install it into a new venv and return the venv folder."""
    root = tmp_path_factory.mktemp('wheel')
    source, dist, venv = root / 'src', root / 'dist', root / 'venv'
    shutil.copytree(REPO, source, ignore=SKIP)
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
         '--no-index', '--disable-pip-version-check', '--quiet', '-w', dist, source],
        cwd=root, timeout=300)
    wheels = glob.glob(str(dist / 'seg_perception-*.whl'))
    assert len(wheels) == 1, wheels
    run([sys.executable, '-m', 'venv', '--without-pip', venv], timeout=120)
    python = venv / 'bin' / 'python'
    site = run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
               timeout=60).stdout.strip()
    # the dependencies (numpy, onnxruntime, rclpy, ...) come from this test environment
    with open(os.path.join(site, 'test_environment.pth'), 'w', encoding='utf-8') as stream:
        stream.write(sysconfig.get_path('purelib') + '\n')
    run([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps', '--no-index',
         '--disable-pip-version-check', '--quiet', wheels[0]], cwd=root, timeout=300)
    return venv


def venv_env(venv):
    """Return the environment for the venv's commands: the venv first on PATH, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['PATH'] = os.pathsep.join([str(venv / 'bin'), env.get('PATH', '')])
    # the ROS wheels' libraries live in the test environment (its bootstrapper set this up for
    # this process; say it again for the venv, whose sys.prefix is elsewhere)
    libs = glob.glob(os.path.join(sysconfig.get_path('purelib'), 'ros_*.libs'))
    env['LD_LIBRARY_PATH'] = os.pathsep.join(
        libs + [os.path.join(sys.prefix, 'lib')] + [env.get('LD_LIBRARY_PATH', '')])
    env['_ROS_WHEELS_BOOTSTRAP_COMPLETE'] = '1'
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # conftest sets the domain
    return env


def test_the_installed_package_is_the_wheel_with_its_samples(venv):
    python = venv / 'bin' / 'python'
    done = run([python, '-c', 'import seg_perception, seg_perception.core.resources as r; '
                'print(seg_perception.__file__); print(r.sample_dir("images")); '
                'print(r.default_model_path())'],
               cwd=venv.parent, env=venv_env(venv), timeout=60)
    package, images, model = done.stdout.split()
    assert package.startswith(str(venv)), f'{package}: the checkout shadows the wheel'
    assert images == str(venv / SHARE_SAMPLES / 'images')
    assert model.startswith(str(venv / 'share' / 'seg_perception' / 'models'))
    assert len(os.listdir(images)) == SAMPLE_COUNT


def test_installed_demo_and_evaluate_run_outside_the_checkout(venv, tmp_path):
    env, cli = venv_env(venv), venv / 'bin' / 'seg-perception'
    out = tmp_path / 'demo'
    done = run([cli, 'demo', '--out', out], cwd=tmp_path, env=env, timeout=400)
    # through the installed node over DDS, then the offline check with the core
    assert 'node demo:' in done.stdout and str(venv / 'share') in done.stdout, done.stdout
    overlays = sorted(p.name for p in out.glob('*_overlay.png'))
    assert len(overlays) == SAMPLE_COUNT, (overlays, done.stdout[-2000:])
    assert all((out / name.replace('_overlay', '_labels')).is_file() for name in overlays)
    scores = re.findall(r'frames with labels: mIoU ([0-9.]+)', done.stdout)
    assert scores and 0.5 < float(scores[-1]) <= 1.0, done.stdout[-2000:]

    images, labels = venv / SHARE_SAMPLES / 'images', venv / SHARE_SAMPLES / 'labels'
    report = tmp_path / 'report'
    done = run([cli, 'evaluate', '--images', images, '--labels', labels, '--report', report],
               cwd=tmp_path, env=env, timeout=400)
    for name in ('metrics.json', 'report.md', 'report.html'):
        assert (report / name).is_file(), name
    metrics = json.loads((report / 'metrics.json').read_text())
    assert metrics['frames']['evaluated'] == SAMPLE_COUNT
    assert 0.5 < metrics['segmentation']['miou'] <= 1.0, metrics['segmentation']
    assert metrics['model'] and str(venv) in json.dumps(metrics['model'])
    assert 'evaluate: mIoU' in done.stdout
