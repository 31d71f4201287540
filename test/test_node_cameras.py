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
Several cameras, one node, one model (issue 14), over real DDS with the node in a subprocess.

Three cameras at three resolutions (one of them compressed) publish CamVid frames from this
process, each from its own rclpy context, on one 10 Hz trigger as synchronized cameras do.
Frames carry ``<camera>_<sequence>`` in frame_id, so every output is matched to the frame it was
made from and gaps are counted in frames. The model takes a batch (``export --dynamic``), so the
node runs the cameras' frames in one inference; every label map must still equal what the core
gives for that frame alone.
"""

import threading
import time
from typing import Dict

import cv2
import pytest
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, CompressedImage

from seg_perception.core import Segmenter
from seg_perception.ros.dds import apply_profile
from seg_perception.ros.harness.peer import (image_array, NodeProcess, Peer, stamp_ns,
                                             wait_until)

from conftest import export_test_model
from node_helpers import agreement, Trigger

apply_profile()

pytestmark = pytest.mark.ros
CAMERAS = {'front': ((360, 480), 'raw'), 'left': ((480, 640), 'raw'),
           'right': ((240, 320), 'compressed')}
RATE_HZ = 10.0
START_TIMEOUT = 90.0
SWAP_TIMEOUT = 120.0
MIN_AGREEMENT = 0.999
FULL_RATE = 0.9  # served / sent of a camera that nothing should slow down
FLOOD_HZ = 100.0


def served(peer: Peer, name: str) -> Dict[int, object]:
    """Return {sequence: labels msg} of the camera's outputs made from triggered frames."""
    result = {}
    for _, msg in peer.messages(f'{name}/labels'):
        prefix, _, sequence = msg.header.frame_id.rpartition('_')
        if prefix == name and sequence.isdigit():
            result[int(sequence)] = msg
    return result


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Return two batch-taking models with other weights (11 and 8 classes)."""
    folder = tmp_path_factory.mktemp('camera_models')
    return (export_test_model(folder / 'eleven.onnx', dynamic=True),
            export_test_model(folder / 'eight.onnx', num_classes=8, seed=1, dynamic=True))


@pytest.fixture(scope='module')
def frames(camvid_samples):
    """Return {camera: [RGB frames at its resolution]}."""
    return {name: [cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                   for _, rgb, _ in camvid_samples[:3]]
            for name, (size, _) in CAMERAS.items()}


@pytest.fixture(scope='module')
def rig(models, frames, tmp_path_factory):
    """Start a three-camera node and one publishing peer per camera; yield them."""
    parameters = {'model_path': models[0], 'num_threads': 1, 'diagnostics_period': 0.5,
                  'error_log_period': 600.0, 'cameras': list(CAMERAS),
                  'batch_timeout_ms': 30.0}
    for name, (_, transport) in CAMERAS.items():
        parameters[name] = {'input_transport': transport, 'expected_rate': RATE_HZ}
    node = NodeProcess(parameters, name='segmentation_cameras',
                       log_dir=str(tmp_path_factory.mktemp('cameras')))
    peers = {name: Peer(node.fqn, outputs=(f'{name}/labels', f'{name}/drivable_mask') + (
                 (f'{name}/color',) if name == 'right' else ()),
                        compressed=transport == 'compressed', input_topic=f'{name}/image',
                        name=f'camera_{name}', diagnostics=name == 'front')
             for name, (_, transport) in CAMERAS.items()}
    try:
        for name, peer in peers.items():
            probe = peer.make_message(frames[name][0], 'rgb8', frame_id='probe', fmt='png')
            assert peer.wait_ready(probe, START_TIMEOUT, output=f'{name}/labels',
                                   alive=node.running), node.log()
        yield node, peers
    finally:
        for peer in peers.values():
            peer.close()
        code = node.stop()
    assert code == 0, node.log()


def test_three_cameras_match_single_frame_runs_with_their_own_header_and_size(
        rig, models, frames):
    """Every camera's labels and mask: its header and size, the core's labels, batched runs."""
    node, peers = rig
    with Segmenter(models[0], num_threads=1) as segmenter:
        expected = {name: [segmenter.process(frame, 'rgb8').labels for frame in frames[name]]
                    for name in CAMERAS}
    trigger = Trigger(peers, frames, RATE_HZ)
    trigger.start()
    time.sleep(4.0)
    trigger.stop()
    time.sleep(1.0)
    for name, ((height, width), _) in CAMERAS.items():
        sent = trigger.sent[name]
        outputs = {seq: msg for seq, msg in served(peers[name], name).items() if seq in sent}
        assert len(outputs) >= FULL_RATE * len(sent), (name, len(outputs), len(sent))
        for sequence, msg in outputs.items():
            stamp, index = sent[sequence]
            assert (msg.height, msg.width, msg.encoding) == (height, width, 'mono8')
            assert stamp_ns(msg) == stamp
            assert agreement(image_array(msg), expected[name][index]) >= MIN_AGREEMENT, name
        masks = [msg for _, msg in peers[name].messages(f'{name}/drivable_mask')
                 if msg.header.frame_id.startswith(f'{name}_')]
        assert masks and all((m.height, m.width) == (height, width) for m in masks)
    colors = [msg for _, msg in peers['right'].messages('right/color')
              if msg.header.frame_id.startswith('right_')]
    assert colors and all((m.height, m.width, m.encoding) == (240, 320, 'rgb8') and
                          stamp_ns(m) == trigger.sent['right'][int(
                              m.header.frame_id.rpartition('_')[2])][0] for m in colors)
    shared = peers['front'].wait_for_diagnostics(
        lambda values: int(values.get('inference_calls', 0)) > 0, 10.0)
    # one trigger publishes the three frames within a millisecond: they run as one batch
    assert float(shared['batch_size.mean']) >= 2.0, shared
    assert shared['cameras'] == 'front left right'
    for name in CAMERAS:
        status = peers['front'].latest_camera_diagnostics(name)
        assert int(status['frames_published']) >= len(served(peers[name], name)), status
        assert status['input_topic'] == f'/{name}/image' + (
            '/compressed' if CAMERAS[name][1] == 'compressed' else '')
        assert 'latency.stamp_to_labels.p50_ms' in status


def rates_while(trigger: Trigger, peers: Dict[str, Peer], seconds: float) -> Dict[str, float]:
    """Return served / sent per camera for the frames sent during the next ``seconds``."""
    begin = time.time_ns()
    time.sleep(seconds)
    end = time.time_ns()
    time.sleep(1.0)  # the last frames' outputs
    ratios = {}
    for name, peer in peers.items():
        sent = trigger.sent_between(name, begin, end)
        if sent:
            outputs = served(peer, name)
            ratios[name] = sum(seq in outputs for seq in sent) / len(sent)
    return ratios


def test_a_silent_camera_does_not_slow_the_others(rig, frames):
    """
    With 'left' silent the others keep 10 Hz: a batch waits for streaming cameras only.

    batch_timeout_ms is set to 2.5 frame periods here, so a node that waited for the silent
    camera would serve the others at less than half their rate.
    """
    node, peers = rig
    assert peers['front'].set_parameters({'batch_timeout_ms': 250.0})[0].successful
    trigger = Trigger(peers, frames, RATE_HZ)
    trigger.start()
    try:
        time.sleep(1.0)
        trigger.muted.add('left')
        time.sleep(1.0)
        ratios = rates_while(trigger, peers, 4.0)
    finally:
        trigger.stop()
        peers['front'].set_parameters({'batch_timeout_ms': 30.0})
    assert set(ratios) == {'front', 'right'}
    assert all(ratio >= FULL_RATE for ratio in ratios.values()), ratios
    status = peers['front'].wait_for_diagnostics(lambda values: True, 5.0)
    print(f'served/sent with left silent: {ratios}; batch sizes {status["batch_size.histogram"]}')


def test_a_camera_flooding_garbage_does_not_starve_the_others(rig, frames):
    """'right' floods undecodable frames at 100 Hz: counted under right, front and left serve."""
    node, peers = rig
    before = {name: int(peers['front'].latest_camera_diagnostics(name).get(
        'frames_rejected', 0)) for name in CAMERAS}
    garbage = CompressedImage(format='png', data=b'\x89PNG\r\n\x1a\n' + bytes(5000))
    garbage.header.frame_id = 'garbage'
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            peers['right'].publish(garbage, restamp=True)
            time.sleep(1.0 / FLOOD_HZ)

    flooder = threading.Thread(target=flood, daemon=True)
    trigger = Trigger({name: peers[name] for name in ('front', 'left')}, frames, RATE_HZ)
    flooder.start()
    trigger.start()
    try:
        time.sleep(1.0)
        ratios = rates_while(trigger, {name: peers[name] for name in ('front', 'left')}, 4.0)
    finally:
        stop.set()
        trigger.stop()
        flooder.join(5)
    assert all(ratio >= FULL_RATE for ratio in ratios.values()), ratios
    assert wait_until(lambda: int(peers['front'].latest_camera_diagnostics('right').get(
        'frames_rejected', 0)) > before['right'] + 10, 10.0), node.log()[-2000:]
    after = {name: peers['front'].latest_camera_diagnostics(name) for name in CAMERAS}
    assert int(after['front']['frames_rejected']) == before['front']
    assert int(after['left']['frames_rejected']) == before['left']
    assert 'rejected.' in ' '.join(after['right']), after['right']
    assert 'camera right: rejected frame' in node.log()


def test_per_camera_parameters_and_camera_info_stay_with_their_camera(rig, frames):
    """
    Per-camera grid parameters and CameraInfo problems affect only that camera.

    'left' gets its own camera height; 'right' a CameraInfo for another aspect ratio (its grid
    stops, counted under right); 'front' a degenerate K (rejected under front, the grid falls back
    to the field of view). The node-wide per-camera value is refused with the per-camera name.
    """
    node, peers = rig
    front = peers['front']
    refused = front.set_parameters({'expected_rate': 5.0})[0]
    assert not refused.successful and 'front.expected_rate' in refused.reason, refused.reason
    results = front.set_parameters({'left.drivable_grid.camera_height': 2.0,
                                    'publish_drivable_grid': True})
    assert all(result.successful for result in results), [r.reason for r in results]
    assert front.get_parameters(['left.drivable_grid.camera_height', 'front.expected_rate']) == {
        'left.drivable_grid.camera_height': 2.0, 'front.expected_rate': RATE_HZ}
    for name, peer in peers.items():
        peer.subscribe(f'{name}/drivable_grid', OccupancyGrid)
    wait_until(lambda: False, 1.0)  # the grid subscriptions match
    wide = CameraInfo(width=1000, height=1000, k=[500.0, 0, 500, 0, 500, 500, 0, 0, 1])
    for _ in range(3):  # a one-shot CameraInfo can still be lost while discovery completes
        peers['right'].publish_camera_info(wide, topic='right/camera_info')
        peers['front'].publish_camera_info(CameraInfo(width=480, height=360, k=[0.0] * 9),
                                           topic='front/camera_info')
        time.sleep(0.2)
    trigger = Trigger(peers, frames, RATE_HZ)
    time.sleep(1.0)
    trigger.start()
    try:
        ratios = rates_while(trigger, peers, 3.0)
    finally:
        trigger.stop()
    assert all(ratio >= FULL_RATE for ratio in ratios.values()), ratios
    grids = {name: [msg for _, msg in peers[name].messages(f'{name}/drivable_grid')
                    if msg.header.frame_id.startswith(f'{name}_')] for name in CAMERAS}
    assert not grids['right'], 'a CameraInfo of another aspect ratio must stop that grid'
    assert grids['front'] and grids['left']
    for name in ('front', 'left'):
        for msg in grids[name]:
            stamp, _ = trigger.sent[name][int(msg.header.frame_id.rpartition('_')[2])]
            assert stamp_ns(msg) == stamp
    heights = {name: grids[name][-1].info.origin.position.y for name in ('front', 'left')}
    assert heights == pytest.approx({'front': 1.5, 'left': 2.0}), heights
    statuses = {name: front.latest_camera_diagnostics(name) for name in CAMERAS}
    assert int(statuses['right'].get('rejected.camera_info_size_mismatch', 0)) > 0, statuses
    assert 1 <= int(statuses['front'].get('rejected.bad_camera_info', 0)) <= 3, statuses
    assert 'rejected.bad_camera_info' not in statuses['left']
    assert 'rejected.camera_info_size_mismatch' not in statuses['left']
    assert 'camera right: rejected frame (camera_info_size_mismatch)' in node.log()
    front.set_parameters({'publish_drivable_grid': False})


def test_model_swap_under_three_streams_loses_no_camera_for_two_periods(rig, models, frames):
    """Swap model_path while all three stream: per camera, no gap over two frame periods."""
    node, peers = rig
    trigger = Trigger(peers, frames, RATE_HZ)
    trigger.start()
    try:
        time.sleep(1.5)
        swap_started = time.time_ns()
        result = peers['front'].set_parameters({'model_path': models[1]},
                                               timeout=SWAP_TIMEOUT)[0]
        swap_returned = time.time_ns()
        time.sleep(1.5)
    finally:
        trigger.stop()
    time.sleep(1.0)
    assert result.successful, result.reason
    with Segmenter(models[1], num_threads=1) as segmenter:
        after = {name: [segmenter.process(frame, 'rgb8').labels for frame in frames[name]]
                 for name in CAMERAS}
    for name in CAMERAS:
        outputs = served(peers[name], name)
        window = trigger.sent_between(name, swap_started - 1_000_000_000,
                                      swap_returned + 1_000_000_000)
        missing_in_a_row = longest_run(seq not in outputs for seq in sorted(window))
        assert missing_in_a_row <= 1, (name, missing_in_a_row, node.log()[-2000:])
        late = [seq for seq in outputs
                if seq in trigger.sent[name] and trigger.sent[name][seq][0] > swap_returned]
        assert late, name
        for seq in late:
            index = trigger.sent[name][seq][1]
            assert agreement(image_array(outputs[seq]), after[name][index]) >= MIN_AGREEMENT


def longest_run(flags) -> int:
    """Return the longest run of True in an iterable of booleans."""
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best
