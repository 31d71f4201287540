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

"""``seg-perception replay`` over real DDS: timing, QoS, remapping, recording, and the node."""

import os
import threading
import time

from bag_helpers import (make_bag, read_topic, replay_cli as replay, run_cli, sample_folders,
                         stamp_of, truncate)
import cv2
import numpy as np
import pytest

from seg_perception.io import bags as bagio
from seg_perception.io.frames import frame_name

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def camera_bag(tmp_path_factory):
    """Four CamVid frames at 10 Hz with camera_info (and labels)."""
    root = tmp_path_factory.mktemp('replay')
    images, labels = sample_folders(str(root), 4)
    calibration = root / 'camera.yaml'
    calibration.write_text('image_width: 480\nimage_height: 360\ncamera_matrix: {rows: 3, '
                           'cols: 3, data: [400, 0, 240, 0, 400, 180, 0, 0, 1]}\n')
    code = __import__('seg_perception.tools.cli', fromlist=['main']).main([
        'make-bag', '--images', images, '--labels', labels, '--out', str(root / 'camera.mcap'),
        '--camera-info', str(calibration), '--start-stamp', '1700000000', '--rate', '10'])
    assert code == 0
    return str(root / 'camera.mcap')


class Listener:
    """An rclpy node in its own context that keeps every Image of a topic and its publishers."""

    def __init__(self, topic):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from seg_perception.ros.dds import apply_profile

        apply_profile()
        self.topic = topic
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('replay_listener', context=self.context)
        self.received = []
        self.publisher_qos = []
        self.node.create_subscription(Image, topic, self._on_image, qos_profile_sensor_data)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown ends the spin
            pass

    def _on_image(self, msg):
        if not self.publisher_qos:
            self.publisher_qos = [i.qos_profile for i in
                                  self.node.get_publishers_info_by_topic(self.topic)]
        self.received.append((bagio.stamp_ns(msg), np.frombuffer(msg.data, np.uint8).copy()))

    def close(self):
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(5)


def test_replay_publishes_the_recorded_frames_with_sensor_qos(camera_bag):
    from rclpy.qos import ReliabilityPolicy

    listener = Listener('/front/image')
    try:
        result = replay(camera_bag, '--topics', bagio.DEFAULT_IMAGE_TOPIC, '--remap',
                        f'{bagio.DEFAULT_IMAGE_TOPIC}:=/front/image', '--wait', '30',
                        '--rate', '0.5')
        deadline = time.monotonic() + 5
        while len(listener.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    assert 'replay: published 4 messages on 1 topics' in result.stdout
    assert listener.received, 'no frame arrived over DDS'
    assert [q.reliability for q in listener.publisher_qos] == [ReliabilityPolicy.BEST_EFFORT]
    original = {stamp: array for stamp, array, _ in read_topic(camera_bag,
                                                               bagio.DEFAULT_IMAGE_TOPIC)}
    stamps = [stamp for stamp, _ in listener.received]
    assert stamps == sorted(stamps)
    for stamp, data in listener.received:
        np.testing.assert_array_equal(data, original[stamp].reshape(-1))


@pytest.mark.parametrize('suffix', ['.mcap', '.db3'])
def test_replay_records_what_it_publishes(camera_bag, tmp_path, suffix):
    out = tmp_path / f'recorded{suffix}'
    topics = [bagio.DEFAULT_IMAGE_TOPIC, bagio.DEFAULT_CAMERA_INFO_TOPIC]
    result = replay(camera_bag, '--reliable', '--start', '0.15', '--record', out,
                    '--record-topics', *topics)
    assert result.returncode == 0, result.stderr
    # image, camera_info and labels, each at 0.2 and 0.3 s
    assert 'published 6 messages on 3 topics' in result.stdout
    recorded = read_topic(str(out), bagio.DEFAULT_IMAGE_TOPIC)
    original = read_topic(camera_bag, bagio.DEFAULT_IMAGE_TOPIC)
    assert [r[0] for r in recorded] == [stamp_of(2), stamp_of(3)]
    for (_, got, _), (_, want, _) in zip(recorded, original[2:]):
        np.testing.assert_array_equal(got, want)
    with bagio.BagReader(str(out)) as reader:
        infos = [reader.deserialize(m) for m in reader.messages([topics[1]])]
    assert [bagio.stamp_ns(i) for i in infos] == [stamp_of(2), stamp_of(3)]
    np.testing.assert_allclose(infos[0].k, [400, 0, 240, 0, 400, 180, 0, 0, 1])


def test_replay_input_errors(capsys, camera_bag, tmp_path):
    cases = [
        ([camera_bag, '--topics', '/nope'], "topic(s) ['/nope'] not found; the bag has "
                                            '/camera/camera_info'),
        ([camera_bag, '--remap', 'nonsense'], "--remap 'nonsense': expected FROM:=TO"),
        ([camera_bag, '--record', tmp_path / 'x.mcap'], '--record OUT and --record-topics'),
        ([tmp_path / 'missing.mcap'], 'missing.mcap: bag not found'),
    ]
    for argv, message in cases:
        code, _, err = run_cli(capsys, 'replay', *argv)
        usage = argv[1:2] in (['--remap'], ['--record'])
        assert code == (2 if usage else 1) and message in err, err
        assert len(err.strip().splitlines()) == 1
    empty = tmp_path / 'empty.mcap'
    bagio.BagWriter(str(empty)).close()
    code, _, err = run_cli(capsys, 'replay', empty)
    assert code == 1 and 'the bag is empty' in err
    # nothing to record: an error, and no empty bag left to block the next run
    out = tmp_path / 'never.db3'
    result = replay(camera_bag, '--record', out, '--record-topics', '/nobody', '--wait', '0.5')
    assert result.returncode == 1 and 'no publisher appeared' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    assert not out.exists()
    assert not any(name.startswith('.never') for name in os.listdir(tmp_path))


def test_replay_to_the_node_reproduces_infer(capsys, tmp_path, labels_model, camera_bag):
    peer = pytest.importorskip(
        'seg_perception.ros.harness.peer',
        reason='needs the segmentation node (seg_perception/ros/node.py, segmentation_node)')
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', camera_bag,
                           '--topic', bagio.DEFAULT_IMAGE_TOPIC, '--out', tmp_path / 'infer',
                           '--save', 'labels')
    assert code == 0, err
    node = peer.NodeProcess({'model_path': labels_model},
                            remappings=[('image', bagio.DEFAULT_IMAGE_TOPIC)],
                            log_dir=str(tmp_path))
    out = tmp_path / 'node_outputs.mcap'
    try:
        result = replay(camera_bag, '--topics', bagio.DEFAULT_IMAGE_TOPIC, '--rate', '0.5',
                        '--wait', '120', '--record', out, '--record-topics',
                        bagio.DEFAULT_LABELS_TOPIC, '/segmentation/drivable_mask')
    finally:
        node.stop()
    assert result.returncode == 0, result.stderr + node.log()
    recorded = read_topic(str(out), bagio.DEFAULT_LABELS_TOPIC)
    assert len(recorded) >= 2, result.stdout + node.log()
    for stamp, labels, encoding in recorded:
        expected = cv2.imread(str(tmp_path / 'infer' / 'labels' / f'{frame_name(stamp)}.png'),
                              cv2.IMREAD_UNCHANGED)
        assert encoding == 'mono8' and labels.shape == expected.shape == (360, 480)
        assert np.mean(labels == expected) >= 0.99
    # the recording is a predictions bag that evaluate scores without running a model
    code, out_text, err = run_cli(capsys, 'evaluate', '--predictions', out, '--bag', camera_bag,
                                  '--gt-classes', 'camvid', '--report', tmp_path / 'report')
    assert code == 0, err
    assert f'over {len(recorded)} frames' in out_text
    assert os.path.exists(tmp_path / 'report' / 'report.html')


def test_replay_of_a_truncated_bag_publishes_up_to_the_cut(capsys, tmp_path):
    images, _ = sample_folders(str(tmp_path), 8)
    bag = make_bag(capsys, str(tmp_path / 'cut.mcap'), images)
    truncate(bag, 0.6)
    stamps = []
    with bagio.BagReader(bag) as reader:
        with pytest.raises(bagio.BagReadError):
            for message in reader.messages([bagio.DEFAULT_IMAGE_TOPIC]):
                stamps.append(bagio.stamp_ns(reader.deserialize(message)))
    assert 2 < len(stamps) < 8
    for options, expected in (([], len(stamps)), (['--start', '0.15'], len(stamps) - 2)):
        result = replay(bag, '--rate', '5', *options)
        assert result.returncode == 1, result.stdout + result.stderr
        assert 'bag truncated' in result.stderr and 'Traceback' not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f'replay: published {expected} messages on 1 topics' in result.stdout, \
            result.stdout
        assert '-9223372036' not in result.stdout + result.stderr


def test_replay_of_a_bag_without_messages_says_so(capsys, tmp_path):
    declared = tmp_path / 'declared.mcap'
    writer = bagio.BagWriter(str(declared))
    writer.add_topic(bagio.DEFAULT_IMAGE_TOPIC, bagio.IMAGE)
    writer.close()
    code, _, err = run_cli(capsys, 'replay', declared)
    assert code == 1 and str(declared) in err and 'no messages' in err, err
    assert '-9223372036' not in err and len(err.strip().splitlines()) == 1
