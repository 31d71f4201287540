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
What other DDS participants can do to the node, over real DDS with the node in a subprocess.

Bursty and silent publishers, frames up to 8192 a side with the shipped 8K profile, parameter
changes that only make sense together, and a peer that finalizes the node's lifecycle.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from seg_perception.core import Segmenter
from seg_perception.ros.dds import apply_profile, PROFILE_VARIABLE, profile_path
from seg_perception.ros.harness.peer import (image_array, NodeProcess, Peer, STATUS_LEVEL,
                                             STATUS_MESSAGE, wait_until)

from node_helpers import agreement, raw_message

apply_profile()
HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = pytest.mark.ros
START_TIMEOUT = 90.0
FRAME_TIMEOUT = 20.0
BIG_FRAME_TIMEOUT = 10.0
NODE_PARAMETERS = {'num_threads': 1, 'diagnostics_period': 0.5, 'error_log_period': 600.0}
OK, WARN = 0, 1


@pytest.fixture(scope='module')
def node_and_peer(labels_model, tmp_path_factory):
    """Run a node on the small test model, with a peer (reliable publisher, as the tests use)."""
    node = NodeProcess(dict(NODE_PARAMETERS, model_path=labels_model), name='segmentation_hostile',
                       log_dir=str(tmp_path_factory.mktemp('hostile')))
    peer = Peer(node.fqn, outputs=('labels',))
    probe = raw_message(np.zeros((48, 64, 3), np.uint8), 'rgb8', 'probe')
    if not peer.wait_ready(probe, START_TIMEOUT, alive=node.running):
        peer.close()
        node.stop()
        pytest.fail(f'node did not start:\n{node.log()}')
    yield node, peer
    peer.close()
    assert node.stop() == 0, node.log()


def test_a_bursty_publisher_is_not_said_to_lose_frames(node_and_peer, camvid_samples):
    """Bursts of 20 frames 2 ms apart with 300 ms pauses lose nothing upstream."""
    node, peer = node_and_peer
    before = peer.fresh_diagnostics(FRAME_TIMEOUT)
    msg = raw_message(camvid_samples[0][1][:120, :160], 'rgb8', 'burst')
    sent = 0
    for _ in range(5):
        for _ in range(20):
            peer.publish(msg, restamp=True)
            sent += 1
            time.sleep(0.002)
        time.sleep(0.3)
    received = int(before['frames_received']) + sent // 2  # best effort, depth 1: most arrive
    values = peer.wait_for_diagnostics(lambda v: int(v['frames_received']) >= received,
                                       FRAME_TIMEOUT)
    assert values, peer.latest_diagnostics()
    lost = int(values.get('frames_lost_upstream', 0)) - int(before.get('frames_lost_upstream', 0))
    assert lost == 0, values  # the median-interval guess claimed ~150 per pause here
    assert float(values['stamp_interval.max_ms']) >= 300.0


def test_a_matched_publisher_that_goes_silent_is_flagged(node_and_peer, camvid_samples):
    """A publisher on the input and no frames for 3 s: WARN, back to OK with the next frame."""
    node, peer = node_and_peer
    msg = raw_message(camvid_samples[1][1], 'rgb8', 'before_silence')
    assert peer.wait_for_stamp(peer.publish(msg, restamp=True), FRAME_TIMEOUT) is not None
    warned = peer.wait_for_diagnostics(
        lambda v: v[STATUS_LEVEL] == WARN and 'no input for' in v[STATUS_MESSAGE], 15.0)
    assert warned, peer.latest_diagnostics()
    assert warned['input_publishers'] == '1'
    assert float(warned['input_silence_s']) > float(warned['input_silence_limit_s']) >= 3.0
    assert 'too large for the DDS transport' in warned[STATUS_MESSAGE]
    msg = raw_message(camvid_samples[1][1], 'rgb8', 'after_silence')
    assert peer.wait_for_stamp(peer.publish(msg, restamp=True), FRAME_TIMEOUT) is not None
    assert peer.wait_for_diagnostics(lambda v: v[STATUS_LEVEL] == OK, FRAME_TIMEOUT)


def test_frames_up_to_8192_a_side_reach_the_node_best_effort(labels_model, tmp_path):
    """
    4K and 8K rgb8 (25 and 100 MB) reach a best-effort node with the shipped 8K profile.

    The profile is read once per process, so the node and its peer run in processes of their own
    (test/big_frames_peer.py) with FASTDDS_DEFAULT_PROFILES_FILE on config/fastdds_shm_8k.xml;
    this test process keeps the default profile of the other tests.
    """
    environ = dict(os.environ, **{PROFILE_VARIABLE: profile_path(eight_k=True)})
    result = subprocess.run([sys.executable, os.path.join(HERE, 'big_frames_peer.py'),
                             labels_model, str(tmp_path)], env=environ, capture_output=True,
                            text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count('labels back') == 3


def export_cityscapes_model(path) -> str:
    """Export a small LRASPP with the 19 Cityscapes classes (names unlike CamVid's)."""
    import torch

    from seg_perception.core.spec import load_class_table, ModelSpec
    from seg_perception.models.export import export_model
    from seg_perception.models.zoo import create_model

    table = load_class_table('cityscapes')
    torch.manual_seed(2)
    model = create_model('lraspp', None, num_classes=len(table.classes)).eval()
    spec = ModelSpec(classes=table.classes, input_height=96, input_width=128,
                     architecture='lraspp', dataset='cityscapes',
                     drivable_classes=table.drivable, input_dtype='uint8',
                     output_kind='labels')
    export_model(model, spec, str(path))
    return str(path)


def test_model_path_and_drivable_classes_change_together(
        node_and_peer, labels_model, camvid_samples, tmp_path):
    """
    A new model with other class names and a drivable class of its own, in one ordinary call.

    Each alone is inconsistent (the old override is not in the new model, the new class is not
    in the old one); the pair is accepted, a pair that does not fit is refused as a whole.
    """
    pytest.importorskip('torch', reason='exporting the second model needs torch')
    node, peer = node_and_peer
    city = export_cityscapes_model(tmp_path / 'cityscapes.onnx')
    assert peer.set_parameters({'drivable_classes': ['Pavement']})[0].successful
    results = peer.set_parameters({'model_path': city, 'drivable_classes': ['sidewalk']},
                                  timeout=120.0)
    assert all(r.successful for r in results), [r.reason for r in results]
    values = peer.get_parameters(['model_path', 'drivable_classes', 'classes.names'])
    assert values['model_path'] == city and list(values['drivable_classes']) == ['sidewalk']
    assert 'sidewalk' in list(values['classes.names'])
    peer.subscribe('drivable_mask')
    rgb = camvid_samples[3][1]
    with Segmenter(city, num_threads=1) as reference:
        expected = reference.process(rgb, 'rgb8', drivable_classes=['sidewalk']).drivable
    mask = None

    def mask_back():
        nonlocal mask
        stamp = peer.publish(raw_message(rgb, 'rgb8', 'city'))
        mask = peer.wait_for_stamp(stamp, 1.0, 'drivable_mask')
        return mask is not None
    assert wait_until(mask_back, FRAME_TIMEOUT), node.log()[-2000:]
    assert agreement(image_array(mask), expected) >= 0.99

    refused = peer.set_parameters({'model_path': labels_model, 'drivable_classes': ['terrain']},
                                  timeout=120.0)
    assert len(refused) == 2 and not any(r.successful for r in refused)
    assert 'terrain' in refused[0].reason and refused[0].reason == refused[1].reason
    values = peer.get_parameters(['model_path', 'drivable_classes'])
    assert values['model_path'] == city and list(values['drivable_classes']) == ['sidewalk']


def test_a_peer_that_finalizes_the_node_makes_it_exit_non_zero(
        labels_model, camvid_samples, tmp_path):
    """The shutdown transition from another process: the node exits 3 for its supervisor."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    node = NodeProcess(dict(NODE_PARAMETERS, model_path=labels_model),
                       name='segmentation_finalized', log_dir=str(tmp_path))
    peer = Peer(node.fqn)
    try:
        probe = raw_message(camvid_samples[0][1], 'rgb8', 'probe')
        assert peer.wait_ready(probe, START_TIMEOUT, alive=node.running), node.log()
        client = peer.node.create_client(ChangeState, f'{node.fqn}/change_state')
        assert client.wait_for_service(timeout_sec=FRAME_TIMEOUT)
        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_ACTIVE_SHUTDOWN
        assert peer._call(client, request, FRAME_TIMEOUT).success
        exited = wait_until(lambda: not node.running(), FRAME_TIMEOUT)
    finally:
        peer.close()
        code = node.stop()
    assert exited, f'the finalized node kept running:\n{node.log()}'
    assert code == 3, node.log()
    assert 'finalized' in node.log() and 'Traceback' not in node.log(), node.log()
