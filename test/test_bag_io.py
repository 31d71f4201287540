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

"""make-bag and bagio on real CamVid frames: lossless round trips and clear errors for bad bags."""

import glob
import os

from bag_helpers import make_bag, read_topic, run_cli, sample_folders, stamp_of, truncate
import cv2
import numpy as np
import pytest

from seg_perception.core.errors import DataError
from seg_perception.core.spec import load_class_table
from seg_perception.io import bags as bagio

CALIBRATION = """image_width: 480
image_height: 360
camera_name: camvid
camera_matrix: {rows: 3, cols: 3, data: [500.0, 0.0, 240.0, 0.0, 501.0, 180.0, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.2, 0.0, 0.0, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [500, 0, 240, 0, 0, 501, 180, 0, 0, 0, 1, 0]}
"""


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    """Three CamVid frames with their labels."""
    return sample_folders(str(tmp_path_factory.mktemp('samples')), 3)


def expected_frames(images, labels):
    """Return the BGR pixels and the label ids (void -> 255) of the sample files."""
    lut = load_class_table('camvid').label_lut()
    names = sorted(os.listdir(images))
    return ([cv2.imread(os.path.join(images, n), cv2.IMREAD_COLOR) for n in names],
            [lut[cv2.imread(os.path.join(labels, n), cv2.IMREAD_UNCHANGED)] for n in names])


@pytest.mark.parametrize('out,options', [
    ('bag.mcap', []), ('bag.db3', []), ('bag_dir_mcap', ['--storage', 'mcap']),
    ('bag_dir_sqlite3', ['--storage', 'sqlite3']), ('bag.bag', [])])
def test_make_bag_round_trip_is_lossless(capsys, tmp_path, folders, out, options):
    images, labels = folders
    calibration = tmp_path / 'camera.yaml'
    calibration.write_text(CALIBRATION)
    path = make_bag(capsys, str(tmp_path / out), images, '--labels', labels, '--classes',
                    'camvid', '--camera-info', str(calibration), *options)
    pixels, ids = expected_frames(images, labels)
    frames = read_topic(path, bagio.DEFAULT_IMAGE_TOPIC)
    gt = read_topic(path, bagio.DEFAULT_GT_TOPIC)
    assert [f[0] for f in frames] == [stamp_of(i) for i in range(len(pixels))]
    assert [g[0] for g in gt] == [f[0] for f in frames]
    for (_, array, encoding), expected in zip(frames, pixels):
        assert encoding == 'bgr8'
        np.testing.assert_array_equal(array, expected)
    for (_, array, encoding), expected in zip(gt, ids):
        assert encoding == 'mono8'
        np.testing.assert_array_equal(array, expected)
    with bagio.BagReader(path) as reader:
        ros1 = reader.is_ros1
        infos = [reader.deserialize(m) for m in reader.messages([bagio.DEFAULT_CAMERA_INFO_TOPIC])]
    assert ros1 == out.endswith('.bag')
    assert len(infos) == len(pixels)
    k = infos[0].K if ros1 else infos[0].k
    np.testing.assert_allclose(k, [500.0, 0.0, 240.0, 0.0, 501.0, 180.0, 0.0, 0.0, 1.0])
    assert (infos[0].width, infos[0].height) == (480, 360)
    assert bagio.stamp_ns(infos[1]) == stamp_of(1)


@pytest.mark.parametrize('fmt', ['png', 'jpeg'])
def test_make_bag_compressed(capsys, tmp_path, folders, fmt):
    images, _ = folders
    path = make_bag(capsys, str(tmp_path / 'bag.mcap'), images, '--compressed', fmt)
    pixels, _ = expected_frames(*folders)
    frames = read_topic(path, bagio.DEFAULT_IMAGE_TOPIC + '/compressed')
    assert len(frames) == len(pixels)
    for (_, array, _), expected in zip(frames, pixels):
        difference = np.abs(array.astype(int) - expected.astype(int)).mean()
        if fmt == 'png':
            assert difference == 0
        else:
            assert 0 < difference < 4  # lossy, but the same picture


def test_make_bag_rejects_bad_input(capsys, tmp_path, folders):
    images, labels = folders
    calibration = tmp_path / 'camera.yaml'
    calibration.write_text(CALIBRATION.replace('image_width: 480', 'image_width: 640'))
    out = tmp_path / 'bag.mcap'
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--out', out,
                           '--camera-info', calibration)
    assert code == 1 and 'calibration is for 640x360' in err and str(calibration) in err
    assert not out.exists() and not glob.glob(str(tmp_path / '.bag.mcap*'))
    calibration.write_text('image_width: 480\nimage_height: 360\n')
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--out', out,
                           '--camera-info', calibration)
    assert code == 1 and "'camera_matrix' is missing" in err
    bad_labels = tmp_path / 'bad_labels'
    bad_labels.mkdir()
    for name in os.listdir(labels):
        cv2.imwrite(str(bad_labels / name), np.zeros((10, 10), np.uint8))
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--labels', bad_labels,
                           '--out', out)
    assert code == 1 and 'ground truth is 10x10, the image 480x360' in err
    code, _, err = run_cli(capsys, 'make-bag', '--images', tmp_path / 'nothing', '--out', out)
    assert code == 1 and 'images folder not found' in err
    assert len(err.strip().splitlines()) == 1


def test_reader_errors_name_the_bag_and_its_topics(tmp_path, capsys, folders):
    images, labels = folders
    path = make_bag(capsys, str(tmp_path / 'bag.mcap'), images, '--labels', labels)
    with bagio.BagReader(path) as reader:
        with pytest.raises(DataError, match=r"topic '/nope' not found; the bag has "
                                            r'/camera/image_raw \(sensor_msgs/msg/Image, 3 '):
            reader.require_topic('/nope')
        with bagio.BagWriter(str(tmp_path / 'other.mcap')) as writer:
            writer.write('/text', 1, writer.store.types['std_msgs/msg/String'](data='x'))
    with bagio.BagReader(str(tmp_path / 'other.mcap')) as reader:
        with pytest.raises(DataError, match=r"'/text' has type std_msgs/msg/String; expected "
                                            r'sensor_msgs/msg/Image'):
            reader.require_topic('/text')
    empty = tmp_path / 'empty.mcap'
    bagio.BagWriter(str(empty)).close()
    with bagio.BagReader(str(empty)) as reader:
        with pytest.raises(DataError, match='the bag is empty'):
            reader.require_topic('/camera/image_raw')
    declared = bagio.BagWriter(str(tmp_path / 'declared.mcap'))
    declared.add_topic('/camera/image_raw', bagio.IMAGE)
    declared.close()
    with bagio.BagReader(str(tmp_path / 'declared.mcap')) as reader:
        with pytest.raises(DataError, match="'/camera/image_raw' has no messages"):
            reader.require_topic('/camera/image_raw')
    garbage = tmp_path / 'garbage.mcap'
    garbage.write_bytes(b'not a bag at all' * 100)
    for bad, message in ((garbage, 'cannot open bag'), (tmp_path / 'missing.mcap', 'not found'),
                         (tmp_path / 'notes.txt', 'unknown bag format'),
                         (tmp_path, 'a bag directory has a metadata.yaml')):
        if bad.suffix == '.txt':
            bad.write_text('hello')
        with pytest.raises(DataError, match=message) as error:
            bagio.BagReader(str(bad)).open()
        assert str(bad) in str(error.value)


def test_truncated_mcap_is_read_up_to_the_cut(tmp_path, capsys):
    images, _ = sample_folders(str(tmp_path), 8)
    path = make_bag(capsys, str(tmp_path / 'bag.mcap'), images)
    truncate(path, 0.6)  # rosbags writes 1 MiB chunks: 3 frames of 480x360 rgb8 each
    received = []
    with bagio.BagReader(path) as reader:
        assert reader.truncated and 'no MCAP footer' in reader.truncated
        with pytest.raises(bagio.BagReadError, match=r'bag truncated: reading stopped after '
                                                     r'\d+ messages .*offset \d+') as error:
            for message in reader.messages([bagio.DEFAULT_IMAGE_TOPIC]):
                received.append(bagio.stamp_ns(reader.deserialize(message)))
    assert 0 < len(received) < 8
    assert error.value.messages_read == len(received)
    assert received == [stamp_of(i) for i in range(len(received))]
    truncate(path, 0.1)  # inside the first chunk: nothing to salvage
    with pytest.raises(DataError, match='before the first complete chunk'):
        bagio.BagReader(path).open()


def test_truncated_sqlite_bag_fails_cleanly(tmp_path, capsys, folders):
    images, _ = folders
    path = make_bag(capsys, str(tmp_path / 'bag.db3'), images)
    truncate(path, 0.5)
    with pytest.raises(DataError, match='bag.db3: cannot open bag'):
        bagio.BagReader(path).open()


def test_ros1_messages_convert_to_ros2(tmp_path):
    path = str(tmp_path / 'camera.bag')
    with bagio.BagWriter(path) as writer:
        header = bagio.make_header(writer.store, 1_500_000_000_123, 'cam', seq=7)
        image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
        writer.write('/cam', 5, bagio.make_image(writer.store, image, 'rgb8', header))
    with bagio.BagReader(path) as reader:
        message = next(reader.messages())
        ros2 = bagio.typestore().deserialize_cdr(reader.to_cdr(message), bagio.IMAGE)
    assert bagio.stamp_ns(ros2) == 1_500_000_000_123 and ros2.header.frame_id == 'cam'
    array, encoding = bagio.image_from_message(ros2, bagio.IMAGE)
    np.testing.assert_array_equal(array, image)


def test_damaged_mcap_summary_and_header(tmp_path, capsys, folders):
    images, _ = folders
    path = make_bag(capsys, str(tmp_path / 'bag.mcap'), images)
    size = os.path.getsize(path)
    with open(path, 'r+b') as stream:  # the footer points the index to a wrong offset
        stream.seek(size - 28)
        stream.write(b'\xff' * 8)
    received = []
    with bagio.BagReader(path) as reader:
        assert reader.truncated.startswith('MCAP summary unreadable')
        with pytest.raises(bagio.BagReadError, match='bag damaged: reading stopped after 3 '):
            for message in reader.messages([bagio.DEFAULT_IMAGE_TOPIC]):
                received.append(bagio.stamp_ns(reader.deserialize(message)))
    assert received == [stamp_of(i) for i in range(3)]
    with open(path, 'r+b') as stream:  # and over the first record
        stream.seek(9)
        stream.write(b'\xff' * 16)
    with pytest.raises(DataError, match='cannot open bag') as error:
        bagio.BagReader(path).open()
    assert path in str(error.value) and '\n' not in str(error.value)


def _read_image_stamps(path):
    """Return the image stamps read from a bag before BagReadError, and that error."""
    stamps = []
    with bagio.BagReader(path) as reader:
        truncated = reader.truncated
        with pytest.raises(bagio.BagReadError) as error:
            for message in reader.messages([bagio.DEFAULT_IMAGE_TOPIC]):
                stamps.append(bagio.stamp_ns(reader.deserialize(message)))
    return stamps, truncated, error.value


def test_half_a_ros1_bag_is_salvaged_chunk_by_chunk(tmp_path, capsys):
    images, labels = sample_folders(str(tmp_path), 10)
    path = make_bag(capsys, str(tmp_path / 'drive.bag'), images, '--labels', labels)
    truncate(path, 0.5)
    stamps, truncated, error = _read_image_stamps(path)
    assert truncated and 'ROS 1' in truncated
    assert 3 <= len(stamps) < 10  # the chunks before the cut (2 frames each) and more
    assert stamps == [stamp_of(i) for i in range(len(stamps))]
    assert 'bag truncated' in str(error) and path in str(error)
    assert error.messages_read == len(stamps)
    with bagio.BagReader(path) as reader:  # the labels of the salvaged frames are there too
        labels_read = sum(1 for _ in _until_damage(reader.messages([bagio.DEFAULT_GT_TOPIC])))
    assert labels_read in (len(stamps) - 1, len(stamps))


def _until_damage(messages):
    try:
        yield from messages
    except bagio.BagReadError:
        return


def test_unindexed_ros1_bag_of_a_killed_recorder_is_salvaged(tmp_path):
    from rosbags.rosbag1 import Writer

    path = tmp_path / 'killed.bag'
    store = bagio.typestore('noetic')
    image = np.zeros((360, 480, 3), np.uint8)
    writer = Writer(path)
    writer.open()
    connection = writer.add_connection('/camera/image_raw', bagio.IMAGE, typestore=store)
    for index in range(8):  # chunks of 1 MiB: 3 frames each, the last 2 frames never written
        header = bagio.make_header(store, stamp_of(index), 'cam', seq=index)
        message = bagio.make_image(store, image, 'rgb8', header)
        writer.write(connection, stamp_of(index), store.serialize_ros1(message, bagio.IMAGE))
    writer.abort()  # what kill -9 leaves: index_pos 0, no index, no chunk infos
    with pytest.raises(Exception, match='not indexed'):  # rosbags alone refuses the file
        with __import__('rosbags.rosbag1', fromlist=['Reader']).Reader(path):
            pass
    stamps, truncated, error = _read_image_stamps(str(path))
    assert stamps == [stamp_of(i) for i in range(6)]
    assert 'no index' in truncated and 'read 6 messages' in str(error)
