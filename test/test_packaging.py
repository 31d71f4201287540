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

"""Packaging: ``colcon build`` installs what ``ros2 run``, ``ros2 launch`` and the demo use."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLCON = os.path.join(os.path.dirname(sys.executable), 'colcon')
SKIP = shutil.ignore_patterns('.venv', '.git', 'build', 'install', 'log', 'out', 'runs',
                              '__pycache__', '*.egg-info', '.pytest_cache')


@pytest.fixture(scope='module')
def install_dir(tmp_path_factory):
    """Build the working tree with colcon in a fresh workspace; return install/seg_perception."""
    if not os.path.exists(COLCON):
        pytest.fail(f'colcon is not installed in the test environment ({COLCON})')
    workspace = tmp_path_factory.mktemp('ws')
    shutil.copytree(REPO, workspace / 'src' / 'seg_perception', ignore=SKIP)
    result = subprocess.run([COLCON, 'build', '--event-handlers', 'console_direct-'],
                            cwd=workspace, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workspace / 'install' / 'seg_perception'


def test_executables_land_where_ros2_run_looks(install_dir):
    for name in ('segmentation_node', 'seg-perception'):
        path = install_dir / 'lib' / 'seg_perception' / name
        assert path.is_file(), f'{path} missing'
        assert os.access(path, os.X_OK)


def test_share_holds_manifest_launch_config_models_and_samples(install_dir):
    share = install_dir / 'share' / 'seg_perception'
    assert (share / 'package.xml').is_file()
    assert (install_dir / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            'seg_perception').is_file()
    for relative in ('launch', 'config', 'config/classes'):
        source = set(os.listdir(os.path.join(REPO, relative)))
        installed = set(os.listdir(share / relative))
        assert source <= installed, f'{relative}: not installed {sorted(source - installed)}'
    models_dir = os.path.join(REPO, 'models')
    models = [f for f in os.listdir(models_dir)
              if os.path.isfile(os.path.join(models_dir, f))] if os.path.isdir(models_dir) else []
    for name in models:
        assert (share / 'models' / name).is_file(), f'models/{name} not installed'
    # the sample frames the demo, bench and evaluate default to (resources.sample_dir)
    for kind in ('images', 'labels'):
        frames = sorted(os.listdir(share / 'data' / 'samples' / 'camvid' / kind))
        assert len(frames) == 10 and all(f.endswith('.png') for f in frames), (kind, frames)


def test_installed_cli_runs(install_dir):
    env = dict(os.environ)
    site = [p for p in (install_dir / 'lib').glob('python3*/site-packages')]
    assert site, 'no site-packages in the install space'
    env['PYTHONPATH'] = os.pathsep.join([str(site[0]), env.get('PYTHONPATH', '')])
    result = subprocess.run([sys.executable, str(install_dir / 'lib' / 'seg_perception' /
                                                 'seg-perception'), '--help'],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'evaluate' in result.stdout


def test_package_xml_declares_runtime_dependencies():
    root = ElementTree.parse(os.path.join(REPO, 'package.xml')).getroot()
    assert root.get('format') == '3'
    depends = {e.text for e in root if e.tag in ('depend', 'exec_depend')}
    for key in ('rclpy', 'sensor_msgs', 'std_msgs', 'nav_msgs', 'diagnostic_msgs',
                'python3-numpy', 'python3-opencv', 'python3-yaml', 'launch_ros'):
        assert key in depends, f'package.xml lacks <exec_depend>{key}</exec_depend>'
    assert root.find('export/build_type').text == 'ament_python'
