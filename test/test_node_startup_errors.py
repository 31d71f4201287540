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
Bad start-up arguments end the node process with exit code 1 and one line, no traceback.

The node runs in a subprocess, as in the other node tests; it must fail before loading a model.
"""

import os
import signal
import subprocess
import sys
import threading
from typing import List

import pytest

from seg_perception.ros.harness.peer import NODE_MODULE

pytestmark = pytest.mark.ros
EXIT_TIMEOUT = 60.0  # process start + rclpy import on a loaded machine


def run_node(ros_args: List[str]) -> subprocess.CompletedProcess:
    """Run the node with these --ros-args until it exits; return its result (output merged)."""
    environ = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable, '-m', NODE_MODULE, '--ros-args', *ros_args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=environ, timeout=EXIT_TIMEOUT, check=False)


def check_one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    """Assert exit code 1, no traceback, and exactly one line holding every word."""
    output = result.stdout
    assert result.returncode == 1, output
    assert 'Traceback' not in output, output
    assert 'model backend=' not in output, output  # failed before loading a model
    lines = [line for line in output.splitlines() if words[0] in line]
    assert len(lines) == 1, output
    for word in words:
        assert word in lines[0], output


def test_out_of_range_value_is_one_line():
    """``-p overlay_alpha:=5.0`` names the parameter, the value and the range."""
    check_one_line(run_node(['-p', 'overlay_alpha:=5.0']),
                   'overlay_alpha', '5.0', 'out of range', '[0.0, 1.0]')


def test_wrong_type_in_params_file_is_one_line(tmp_path):
    """A string where an integer is declared names the parameter, the value and the type."""
    params = tmp_path / 'params.yaml'
    params.write_text("/**:\n  ros__parameters:\n    num_threads: 'two'\n", encoding='utf-8')
    check_one_line(run_node(['--params-file', str(params)]),
                   'num_threads', "'two'", 'a string', 'an integer in [0, 256]')


def test_broken_params_file_is_one_line(tmp_path):
    """A params file that is not valid YAML is named on one line."""
    params = tmp_path / 'broken.yaml'
    params.write_text('/**:\n  ros__parameters: [\n', encoding='utf-8')
    check_one_line(run_node(['--params-file', str(params)]), str(params), 'error')


def test_missing_params_file_is_one_line(tmp_path):
    """A params file that does not exist is named on one line."""
    params = tmp_path / 'missing.yaml'
    check_one_line(run_node(['--params-file', str(params)]), str(params), 'error')


def test_malformed_parameter_argument_is_one_line():
    """A ``-p`` argument without ``:=`` is named on one line."""
    check_one_line(run_node(['-p', 'overlay_alpha']), "'-p overlay_alpha'", 'error')


@pytest.mark.parametrize('cameras, words', [
    ("['front', 'left', 'front']", ('cameras', "'front' is given twice")),
    ("['front', 'left cam']", ('cameras', "'left cam' is not a camera name")),
    ("['front', '']", ('cameras', "'' is not a camera name")),
    ("['qos']", ('cameras', "'qos' is reserved")),
])
def test_bad_camera_lists_are_one_line(cameras, words):
    """Duplicate, invalid or reserved camera names end the node with one line naming them."""
    check_one_line(run_node(['-p', f'cameras:={cameras}']), *words)


def test_cameras_with_a_single_image_remap_is_one_line():
    """A camera list and a remap of the single camera's image topic at once: one clear line."""
    check_one_line(run_node(['-p', "cameras:=['front', 'left']", '-r', 'image:=/cam/image_raw']),
                   'cameras', 'image -> /cam/image_raw', 'front/image:=')


def test_bad_per_camera_value_is_one_line():
    """A per-camera parameter is checked like the node-wide one and named with its camera."""
    check_one_line(run_node(['-p', "cameras:=['front', 'left']",
                             '-p', 'left.expected_rate:=-3.0']),
                   'left.expected_rate', '-3.0', 'out of range')
    check_one_line(run_node(['-p', "cameras:=['front']", '-p', 'front.input_transport:=jpeg']),
                   'front.input_transport', "'jpeg' is not one of")


def test_a_parameter_of_no_camera_is_named_in_a_warning(tmp_path):
    """A params-file value for a camera that is not in cameras is not silently dropped."""
    params = tmp_path / 'cameras.yaml'
    params.write_text("/**:\n  ros__parameters:\n    autostart: false\n    cameras: ['front']\n"
                      '    rear:\n      expected_rate: 5.0\n', encoding='utf-8')
    environ = dict(os.environ, PYTHONUNBUFFERED='1')
    process = subprocess.Popen([sys.executable, '-m', NODE_MODULE, '--ros-args',
                                '--params-file', str(params)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=environ)
    lines = []
    watchdog = threading.Timer(EXIT_TIMEOUT, process.kill)  # the line never came: end the read
    watchdog.start()
    try:
        for line in process.stdout:
            lines.append(line)
            if 'rear.expected_rate' in line:
                break
    finally:
        watchdog.cancel()
        process.send_signal(signal.SIGINT)
        process.wait(EXIT_TIMEOUT)
    output = ''.join(lines)
    assert 'WARN' in output and 'parameter rear.expected_rate was given but' in output, output
    assert "cameras: ['front']" in output, output
