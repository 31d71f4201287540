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

"""Helpers of the rosbag tool tests: CLI runs, sample folders, reading a topic back."""

import glob
import json
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np

from seg_perception.io import bags as bagio
from seg_perception.tools.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, 'data', 'samples', 'camvid')
START_S = 1700000000.0
RATE_HZ = 10.0
REPLAY_TIMEOUT_S = 180


def run_cli(capsys, *argv: str) -> Tuple[int, str, str]:
    """Run ``seg-perception argv`` in this process; return (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sample_folders(root: str, count: int = 4) -> Tuple[str, str]:
    """Copy the first ``count`` CamVid sample frames and labels into root; return both dirs."""
    images, labels = os.path.join(root, 'images'), os.path.join(root, 'labels')
    os.makedirs(images, exist_ok=True)
    os.makedirs(labels, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(SAMPLES, 'images', '*.png')))[:count]:
        name = os.path.basename(path)
        shutil.copy(path, os.path.join(images, name))
        shutil.copy(os.path.join(SAMPLES, 'labels', name), os.path.join(labels, name))
    return images, labels


def stamp_of(index: int) -> int:
    """Return the stamp make-bag gives frame ``index`` with START_S and RATE_HZ."""
    return int(START_S * 1e9) + int(round(index * 1e9 / RATE_HZ))


def make_bag(capsys, out: str, images: str, *options: str) -> str:
    """Run make-bag with fixed stamps; assert success; return out."""
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--out', out,
                           '--start-stamp', str(START_S), '--rate', str(RATE_HZ), *options)
    assert code == 0, err
    return out


def read_topic(path: str, topic: str) -> List[Tuple[int, np.ndarray, str]]:
    """Return [(stamp, array copy, encoding)] of an image topic, in bag order."""
    frames = []
    with bagio.BagReader(path) as reader:
        msgtype = reader.require_topic(topic)
        for message in reader.messages([topic]):
            decoded = reader.deserialize(message)
            array, encoding = bagio.image_from_message(decoded, msgtype)
            frames.append((bagio.stamp_ns(decoded), np.array(array), encoding))
    return frames


def load_metrics(report_dir: str) -> Dict:
    """Return a report's metrics.json."""
    with open(os.path.join(report_dir, 'metrics.json'), encoding='utf-8') as stream:
        return json.load(stream)


def truncate(path: str, fraction: float) -> int:
    """Cut a file to ``fraction`` of its size; return the new size."""
    size = int(os.path.getsize(path) * fraction)
    with open(path, 'r+b') as stream:
        stream.truncate(size)
    return size


def replay_cli(*argv: str, timeout: float = REPLAY_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``seg-perception replay`` in its own process (its own DDS participant)."""
    command = [sys.executable, '-m', 'seg_perception.tools.cli', 'replay', *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
