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
``seg-perception evaluate --ray``: the same numbers on Ray as in one process.

A local Ray instance with 2 workers, a two-node ``ray.cluster_utils.Cluster`` on this machine,
and a worker killed mid-run all give the confusion matrix of the single-process run over the
same small bags (mixed formats, one truncated, one corrupt, one without ground truth). Ray is
started with small memory settings and every Ray process is gone after each test.
"""

import os
import signal
import subprocess
import sys
import time

from bag_helpers import fleet_bags, load_metrics, run_quiet
import pytest

from seg_perception.tools import fleet

ray = pytest.importorskip('ray')

OBJECT_STORE_BYTES = 100 * 1024 * 1024
ORDER = ('mcap', 'db3', 'ros1', 'dir', 'truncated', 'corrupt', 'no_gt')


def ray_processes():
    """Return {pid: command line} of the Ray processes on this machine (raylet, GCS, workers)."""
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as stream:
                command = stream.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if any(word in command for word in ('raylet', 'gcs_server', 'ray::', 'default_worker.py',
                                            'ray/dashboard', 'log_monitor.py')):
            found[int(entry)] = command
    return found


@pytest.fixture
def no_ray_left():
    """Make sure this test leaves no Ray running: shut down, then wait for its processes."""
    before = set(ray_processes())
    yield
    if ray.is_initialized():
        ray.shutdown()
    deadline = time.monotonic() + 30
    while set(ray_processes()) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: cmd for pid, cmd in ray_processes().items() if pid not in before}
    assert not left, f'Ray processes survived the test: {left}'


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """Small bags of mixed formats, some damaged (see bag_helpers.fleet_bags)."""
    return fleet_bags(str(tmp_path_factory.mktemp('fleet')))


def bag_options(bags):
    """Return ``--bag B`` for every bag, in ORDER."""
    return [part for key in ORDER for part in ('--bag', bags[key])]


@pytest.fixture(scope='module')
def baseline(bags, labels_model, tmp_path_factory):
    """Run evaluate over all bags in one process (exit 1: a truncated and a corrupt bag)."""
    report = tmp_path_factory.mktemp('baseline')
    code, _, err = run_quiet('evaluate', '--model', labels_model, *bag_options(bags),
                             '--threads', '1', '--report', report)
    assert code == 1 and 'could not be scored fully' in err, err
    return load_metrics(str(report))


def assert_same_scores(metrics, baseline):
    """Check the numbers that must not depend on where the bags were scored."""
    assert metrics['segmentation'] == baseline['segmentation']
    assert metrics['drivable'] == baseline['drivable']
    assert metrics['per_frame'] == baseline['per_frame']
    assert metrics['worst_frames'] == baseline['worst_frames']
    assert metrics['strip'] == baseline['strip'] and len(metrics['strip']['worst']) == 3
    assert metrics['frames'] == baseline['frames']
    keys = ('bag', 'sequence', 'status', 'error', 'frames', 'miou', 'road_iou',
            'drivable_precision', 'drivable_recall')
    assert [{k: row[k] for k in keys} for row in metrics['bags']] == [
        {k: row[k] for k in keys} for row in baseline['bags']]
    assert [row['miou'] for row in metrics['sequences']] == [
        row['miou'] for row in baseline['sequences']]


def evaluate_on_ray(labels_model, bags, report, *ray_options):
    """Run evaluate over all bags on Ray; return (exit code, stderr, metrics)."""
    code, _, err = run_quiet('evaluate', '--model', labels_model, *bag_options(bags),
                             '--threads', '1', '--report', report, *ray_options)
    return code, err, load_metrics(str(report))


def test_ray_is_optional_and_never_loaded_by_the_node(tmp_path, monkeypatch, bags, labels_model):
    code = ('import sys; import seg_perception.core, seg_perception.ros.node, '
            'seg_perception.tools.evaluate, seg_perception.tools.fleet; '
            'print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == '[]', out.stderr
    monkeypatch.setitem(sys.modules, 'ray', None)  # as if not installed
    code, _, err = run_quiet('evaluate', '--model', labels_model, '--bag', bags['mcap'],
                             '--ray', '--report', tmp_path / 'r')
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert 'pip install' in err and 'ray[data]==2.60.0' in err


def test_an_unreachable_cluster_fails_fast_naming_it(tmp_path, bags, labels_model):
    started = time.monotonic()
    code, _, err = run_quiet('evaluate', '--model', labels_model, '--bag', bags['mcap'],
                             '--ray', '127.0.0.1:9', '--ray-timeout', '3', '--report',
                             tmp_path / 'r')
    assert code == 1 and '127.0.0.1:9' in err and 'cannot reach' in err, err
    assert len(err.strip().splitlines()) == 1 and time.monotonic() - started < 20
    assert not ray.is_initialized()


def test_local_ray_with_two_workers_gives_the_single_process_numbers(
        tmp_path, bags, labels_model, baseline, no_ray_left):
    code, err, metrics = evaluate_on_ray(labels_model, bags, tmp_path / 'r', '--ray',
                                         '--ray-workers', '2')
    assert code == 1 and 'could not be scored fully' in err, err
    assert_same_scores(metrics, baseline)
    info = metrics['fleet']
    assert info['runner'] == 'ray' and info['workers'] == 2 and info['retries'] == 0
    assert info['address'] == 'local'
    assert len({row['worker'] for row in metrics['bags']}) == 2  # both workers scored bags
    assert 'ray' in (tmp_path / 'r' / 'report.md').read_text()


def test_two_node_cluster_gives_the_single_process_numbers(tmp_path, bags, labels_model,
                                                           baseline, no_ray_left):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        'num_cpus': 1, 'object_store_memory': OBJECT_STORE_BYTES, 'include_dashboard': False})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        cluster.wait_for_nodes()
        address = cluster.address
        code, err, metrics = evaluate_on_ray(labels_model, bags, tmp_path / 'r', '--ray',
                                             address, '--ray-workers', '2')
    finally:
        cluster.shutdown()
    assert code == 1 and 'could not be scored fully' in err, err
    assert_same_scores(metrics, baseline)
    assert metrics['fleet']['address'] == address
    assert len({row['node'] for row in metrics['bags'] if row['node']}) == 2  # one per node


def test_a_worker_killed_mid_run_is_retried_with_the_same_numbers(
        tmp_path, bags, labels_model, baseline, no_ray_left, monkeypatch):
    killed = []
    original = fleet.RayFleet._submit

    def submit(self, slot, unit):
        reference = original(self, slot, unit)
        if unit.index == 2 and not killed:  # the ROS 1 bag, just handed to its worker
            os.kill(slot.pid, signal.SIGKILL)
            killed.append(slot.pid)
        return reference

    monkeypatch.setattr(fleet.RayFleet, '_submit', submit)
    code, err, metrics = evaluate_on_ray(labels_model, bags, tmp_path / 'r', '--ray',
                                         '--ray-workers', '2')
    assert killed and code == 1, err
    assert_same_scores(metrics, baseline)
    assert metrics['fleet']['retries'] == 1
    row = metrics['bags'][2]
    assert row['attempts'] == 2 and row['worker'] != killed[0]
    assert 'retries | 1' in (tmp_path / 'r' / 'report.md').read_text()


def test_ctrl_c_under_ray_writes_a_partial_report_and_stops_ray(
        tmp_path, bags, labels_model, no_ray_left, monkeypatch):
    """Ctrl-C in the driver while bags are in flight: a report marked incomplete, exit 130."""
    original = fleet.RayFleet._submit

    def submit(self, slot, unit):
        if unit.index == 4:  # two or three bags are scored; the driver gets Ctrl-C
            raise KeyboardInterrupt
        return original(self, slot, unit)

    monkeypatch.setattr(fleet.RayFleet, '_submit', submit)
    code, err, metrics = evaluate_on_ray(labels_model, bags, tmp_path / 'r', '--ray',
                                         '--ray-workers', '2')
    assert code == 130 and 'interrupted' in err, err
    assert metrics['complete'] is False and metrics['interrupted'] is True
    # bags are handed out biggest first, so which ones were scored is not a prefix
    statuses = [row['status'] for row in metrics['bags']]
    assert 'ok' in statuses and 'not run' in statuses, statuses
    assert statuses.count('interrupted') <= 2, statuses  # at most one in flight per worker
    assert metrics['frames']['evaluated'] > 0
    assert 'INCOMPLETE' in (tmp_path / 'r' / 'report.md').read_text()
