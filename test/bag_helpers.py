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

import contextlib
import glob
import io
import json
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import cv2
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


def sample_folders(root: str, count: int = 4, start: int = 0,
                   width: Optional[int] = None) -> Tuple[str, str]:
    """
    Copy ``count`` CamVid sample frames (from the ``start``-th) and labels into root.

    ``width`` scales them down (images INTER_AREA, labels NEAREST) for fast tests. Returns the
    image and the label folder.
    """
    images, labels = os.path.join(root, 'images'), os.path.join(root, 'labels')
    os.makedirs(images, exist_ok=True)
    os.makedirs(labels, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(SAMPLES, 'images', '*.png')))[start:start + count]:
        name = os.path.basename(path)
        label = os.path.join(SAMPLES, 'labels', name)
        if width is None:
            shutil.copy(path, os.path.join(images, name))
            shutil.copy(label, os.path.join(labels, name))
            continue
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        size = (width, max(1, round(image.shape[0] * width / image.shape[1])))
        cv2.imwrite(os.path.join(images, name),
                    cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        cv2.imwrite(os.path.join(labels, name),
                    cv2.resize(cv2.imread(label, cv2.IMREAD_UNCHANGED), size,
                               interpolation=cv2.INTER_NEAREST))
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


def run_quiet(*argv: str) -> Tuple[int, str, str]:
    """Run ``seg-perception argv`` here without pytest's capsys; return (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def fleet_bags(root: str, width: int = 160) -> Dict[str, str]:
    """
    Write small evaluation bags of mixed formats from the CamVid samples; return {name: path}.

    ``mcap``, ``db3``, ``ros1`` (a ROS 1 ``.bag``) and ``dir`` (a ROS 2 bag directory with
    sqlite3 storage and JPEG images) are good bags of 2-3 frames each, with different frames;
    ``truncated`` is a ROS 1 bag of 4 frames cut at 60 % (its first 2 frames are salvaged);
    ``corrupt`` is an ``.mcap`` that is no bag at all; ``no_gt`` has images only. Frames are
    ``width`` pixels wide.
    """
    plan = [('mcap', 'drive_a_0.mcap', 0, 3, ()), ('db3', 'drive_a_1.db3', 3, 3, ()),
            ('ros1', 'drive_b.bag', 6, 2, ()),
            ('dir', 'drive_c', 8, 2, ('--storage', 'sqlite3', '--compressed', 'jpeg')),
            ('truncated', 'drive_d.bag', 0, 4, ()), ('no_gt', 'drive_e.mcap', 2, 2, ())]
    bags = {}
    for key, name, start, count, options in plan:
        images, labels = sample_folders(os.path.join(root, 'frames', key), count, start, width)
        out = os.path.join(root, name)
        label_options = () if key == 'no_gt' else ('--labels', labels)
        code, _, err = run_quiet('make-bag', '--images', images, '--out', out, '--start-stamp',
                                 str(START_S + start / RATE_HZ), '--rate', str(RATE_HZ),
                                 *label_options, *options)
        assert code == 0, err
        if key == 'truncated':
            truncate(out, 0.6)
        bags[key] = out
    bags['corrupt'] = os.path.join(root, 'drive_f.mcap')
    with open(bags['corrupt'], 'wb') as stream:
        stream.write(b'\x89MCAP0\r\n' + bytes(range(256)) * 8)
    return bags


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
