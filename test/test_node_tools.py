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


@pytest.fixture(scope='module')
def batch_model(tmp_path_factory):
    """Return a small model that takes a batch (export --dynamic)."""
    from conftest import export_test_model

    return export_test_model(tmp_path_factory.mktemp('bench_models') / 'batch.onnx',
                             dynamic=True)


@pytest.mark.parametrize('synchronized', [False, True], ids=['free_running', 'synchronized'])
def test_bench_node_with_two_cameras_reports_each_and_the_batches(
        synchronized, labels_model, batch_model, tmp_path):
    """Two cameras, one node: each is served, totals and the shared batch status are reported."""
    report = tmp_path / 'bench.json'
    command = [sys.executable, '-m', 'seg_perception.tools.cli', 'bench', 'node',
               '--cameras', '2', '--size', '320x240', '--rate', '10', '--seconds', '3',
               '--threads', '1', '--repeats', '5', '--warmup', '1', '--json', str(report)]
    if synchronized:  # one stamp for both, and time to wait for the other: batches of 2
        command += ['--model', batch_model, '--synchronized', '--batch-timeout-ms', '30']
    else:
        command += ['--model', labels_model]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(report.read_text())
    assert result['cameras'] == 2 and result['synchronized'] is synchronized
    assert result['camera'] == [240, 320]
    assert set(result['per_camera']) == {'cam0', 'cam1'}
    for name, figures in result['per_camera'].items():
        assert 0 < figures['frames_received'] <= figures['frames_sent'], name
        assert figures['latency_p99_ms'] >= figures['latency_p50_ms'] > 0
        assert f'camera {name}: stamp -> ~/{name}/labels received: p50' in done.stdout
        assert 'stamp_to_labels' in figures['node_stage_p50_ms']
    assert result['frames_received'] == sum(
        figures['frames_received'] for figures in result['per_camera'].values())
    assert result['served_fps'] == pytest.approx(result['frames_received'] / 2.0)
    shared = result['node_shared']
    assert int(shared['inference_calls']) > 0 and float(shared['batch_size.mean']) >= 1.0
    assert float(shared['latency.inference_call.p50_ms']) > 0
    sizes = dict(item.split(':') for item in shared['batch_size.histogram'].split())
    assert set(sizes) <= {'1', '2'} and ('2' in sizes) is synchronized
    assert 'frames/s served' in done.stdout and 'batch_size.histogram' in done.stdout
    assert result['transport_floor'] == {} and 'transport floor: skipped' in done.stdout
    assert ('synchronized' if synchronized else 'free-running') in done.stdout


def test_bench_node_rejects_bad_options():
    """Bad numbers are a usage error (exit 2) with a one-line message."""
    command = [sys.executable, '-m', 'seg_perception.tools.cli', 'bench', 'node',
               '--seconds', '0.5']
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and '--seconds 0.5' in done.stderr


@pytest.mark.parametrize('options, message', [
    (['--synchronized'], '--synchronized: needs --cameras 2 or more'),
    (['--cameras', '0'], "argument --cameras: '0' must be >= 1"),
    (['--batch-timeout-ms', '-1'], 'argument --batch-timeout-ms: ')])
def test_bench_node_rejects_bad_camera_options(options, message):
    """Camera options out of range, or --synchronized with one camera: exit 2, say which."""
    command = [sys.executable, '-m', 'seg_perception.tools.cli', 'bench', 'node', *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]
