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

"""The node demo and ``seg-perception bench node``, end to end with a node process."""

import argparse
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from seg_perception.core import Segmenter
from seg_perception.ros.dds import apply_profile

apply_profile()

pytestmark = pytest.mark.ros


def test_node_demo_writes_what_the_node_published(labels_model, camvid_samples, tmp_path):
    """Every sample gets overlay, drivable and labels PNGs equal to the core's results."""
    from seg_perception.core.resources import sample_dir
    from seg_perception.io.images import list_images
    from seg_perception.tools.demo_node import run_node_demo

    out = tmp_path / 'demo'
    args = argparse.Namespace(out=str(out), backend='auto', alpha=0.5)
    assert run_node_demo(args, list_images(sample_dir('images')), labels_model) == 0
    with Segmenter(labels_model, num_threads=1) as segmenter:
        for name, rgb, _ in camvid_samples:
            stem = os.path.splitext(name)[0]
            labels = cv2.imread(str(out / f'{stem}_labels.png'), cv2.IMREAD_UNCHANGED)
            drivable = cv2.imread(str(out / f'{stem}_drivable.png'), cv2.IMREAD_UNCHANGED)
            overlay = cv2.imread(str(out / f'{stem}_overlay.png'), cv2.IMREAD_COLOR)
            assert labels.shape == drivable.shape == rgb.shape[:2] == overlay.shape[:2]
            expected = segmenter.process(rgb, 'rgb8')
            assert np.mean(labels == expected.labels) >= 0.99
            assert set(np.unique(drivable)) <= {0, 255}


def test_bench_node_reports_latency_and_ratios(labels_model, tmp_path):
    """A short 720p run: labels come back and the ratios are computed from measured values."""
    report = tmp_path / 'bench.json'
    command = [sys.executable, '-m', 'seg_perception.tools.cli', 'bench', 'node',
               '--model', labels_model, '--seconds', '3', '--threads', '1',
               '--repeats', '5', '--warmup', '1', '--json', str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert 'p50 / inference' in done.stdout and 'p99 / p50' in done.stdout
    result = json.loads(report.read_text())
    assert result['camera'] == [720, 1280]
    assert 0 < result['frames_received'] <= result['frames_sent']
    assert result['latency_p99_ms'] >= result['latency_p50_ms'] > 0
    assert result['p50_over_inference'] == pytest.approx(
        result['latency_p50_ms'] / result['model']['infer_ms'])
    assert result['model']['model_path'] == labels_model
    stages = result['node_stage_p50_ms']
    assert {'infer', 'stamp_to_labels', 'stamp_to_publish'} <= set(stages)
    tails = result['node_stage_p99_ms']
    assert set(tails) == set(stages) and all(tails[k] >= stages[k] for k in stages)
    # ~/labels goes out before the drivable mask: its stamp latency is the smaller one
    assert 0 < stages['stamp_to_labels'] <= stages['stamp_to_publish']
    assert 'until ~/labels is published' in done.stdout
    # the model-free echo process gives the transport floor of the same frames
    floor = result['transport_floor']
    assert 0 < floor['p50_ms'] <= floor['p99_ms'] and 'transport floor' in done.stdout


def test_bench_node_rejects_bad_options():
    """Bad numbers are a usage error (exit 2) with a one-line message."""
    command = [sys.executable, '-m', 'seg_perception.tools.cli', 'bench', 'node',
               '--seconds', '0.5']
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and '--seconds 0.5' in done.stderr
