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

"""``seg-perception infer`` on real CamVid frames from folders, ROS 2 bags and a ROS 1 bag."""

import csv
import os

from bag_helpers import make_bag, read_topic, run_cli, sample_folders, stamp_of, truncate
import cv2
import numpy as np
import pytest

from seg_perception.core import Segmenter
from seg_perception.io import bags as bagio
from seg_perception.io.frames import frame_name


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    """Four CamVid frames with their labels."""
    return sample_folders(str(tmp_path_factory.mktemp('samples')), 4)


@pytest.fixture(scope='module')
def expected(labels_model, folders):
    """Labels and drivable masks of the Segmenter called directly on the sample files."""
    segmenter = Segmenter(labels_model)
    results = []
    for name in sorted(os.listdir(folders[0])):
        bgr = cv2.imread(os.path.join(folders[0], name), cv2.IMREAD_COLOR)
        result = segmenter.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 'rgb8')
        results.append((result.labels, result.drivable))
    return results


def read_outputs(out, kind):
    """Return the PNGs of one output kind, sorted by name, as arrays."""
    folder = os.path.join(out, kind)
    return [cv2.imread(os.path.join(folder, n), cv2.IMREAD_UNCHANGED)
            for n in sorted(os.listdir(folder))]


@pytest.mark.parametrize('out_bag', ['out.mcap', 'out.db3'])
def test_infer_images_and_bag_write_the_segmenter_output(capsys, tmp_path, labels_model,
                                                         folders, expected, out_bag):
    images, _ = folders
    code, out, err = run_cli(capsys, 'infer', '--model', labels_model, '--images', images,
                             '--out', tmp_path / 'from_images')
    assert code == 0, err
    assert 'infer: 4 frames' in out and '% of model time' in out
    bag = make_bag(capsys, str(tmp_path / 'input.mcap'), images)
    code, out, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', bag,
                             '--out', tmp_path / 'from_bag', '--out-bag', tmp_path / out_bag,
                             '--save', 'labels', 'drivable', 'overlay', 'color')
    assert code == 0, err
    for folder in ('from_images', 'from_bag'):
        labels = read_outputs(tmp_path / folder, 'labels')
        drivable = read_outputs(tmp_path / folder, 'drivable')
        assert len(labels) == len(expected)
        for (want_labels, want_drivable), got_labels, got_drivable in zip(expected, labels,
                                                                          drivable):
            np.testing.assert_array_equal(got_labels, want_labels)
            np.testing.assert_array_equal(got_drivable, want_drivable)
    assert sorted(os.listdir(tmp_path / 'from_bag' / 'labels')) == [
        frame_name(stamp_of(i)) + '.png' for i in range(4)]
    overlays = read_outputs(tmp_path / 'from_bag', 'overlay')
    assert len(overlays) == 4 and overlays[0].shape == (360, 480, 3)
    with open(tmp_path / 'from_bag' / 'frames.csv', encoding='utf-8') as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r['stamp_ns']) for r in rows] == [stamp_of(i) for i in range(4)]
    # the output bag: node topic names, the input headers, the input images copied
    labels = read_topic(str(tmp_path / out_bag), '/segmentation/labels')
    masks = read_topic(str(tmp_path / out_bag), '/segmentation/drivable_mask')
    overlay = read_topic(str(tmp_path / out_bag), '/segmentation/overlay')
    copied = read_topic(str(tmp_path / out_bag), bagio.DEFAULT_IMAGE_TOPIC)
    original = read_topic(bag, bagio.DEFAULT_IMAGE_TOPIC)
    assert [m[0] for m in labels] == [stamp_of(i) for i in range(4)]
    assert [m[0] for m in overlay] == [m[0] for m in masks] == [m[0] for m in labels]
    for (_, got, encoding), (want, want_mask), (_, mask, _) in zip(labels, expected, masks):
        assert encoding == 'mono8'
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(mask, want_mask)
    assert overlay[0][2] == 'rgb8' and overlay[0][1].shape == (360, 480, 3)
    for (stamp, got, _), (want_stamp, want, _) in zip(copied, original):
        assert stamp == want_stamp
        np.testing.assert_array_equal(got, want)


def test_infer_ros1_bag_with_compressed_images(capsys, tmp_path, labels_model, folders,
                                               expected):
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import get_typestore, Stores

    store = get_typestore(Stores.ROS1_NOETIC)
    compressed = store.types['sensor_msgs/msg/CompressedImage']
    header_type = store.types['std_msgs/msg/Header']
    time_type = store.types['builtin_interfaces/msg/Time']
    path = tmp_path / 'drive.bag'
    with Writer(path) as writer:
        connection = writer.add_connection('/cam/image/compressed', compressed.__msgtype__,
                                           typestore=store)
        for index, name in enumerate(sorted(os.listdir(folders[0]))):
            data = open(os.path.join(folders[0], name), 'rb').read()
            sec, nanosec = divmod(stamp_of(index), 1_000_000_000)
            message = compressed(header=header_type(seq=index, stamp=time_type(sec, nanosec),
                                                    frame_id='cam'),
                                 format='png', data=np.frombuffer(data, np.uint8))
            writer.write(connection, stamp_of(index),
                         store.serialize_ros1(message, compressed.__msgtype__))
    code, out, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', path,
                             '--out', tmp_path / 'out', '--save', 'labels',
                             '--out-bag', tmp_path / 'out.mcap')
    assert code == 0, err
    assert 'from ' + str(path) + ':/cam/image/compressed' in out
    for got, (want, _) in zip(read_outputs(tmp_path / 'out', 'labels'), expected):
        np.testing.assert_array_equal(got, want)
    copied = read_topic(str(tmp_path / 'out.mcap'), '/cam/image/compressed')
    assert [c[0] for c in copied] == [stamp_of(i) for i in range(4)]
    bgr = cv2.imread(os.path.join(folders[0], sorted(os.listdir(folders[0]))[0]))
    np.testing.assert_array_equal(copied[0][1], bgr)


def test_infer_every_and_max(capsys, tmp_path, labels_model, folders):
    bag = make_bag(capsys, str(tmp_path / 'input.db3'), folders[0])
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', bag, '--out',
                           tmp_path / 'out', '--every', '2', '--max', '1', '--save', 'labels')
    assert code == 0, err
    assert os.listdir(tmp_path / 'out' / 'labels') == [frame_name(stamp_of(0)) + '.png']
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', bag, '--out',
                           tmp_path / 'out2', '--every', '2', '--save', 'labels')
    assert sorted(os.listdir(tmp_path / 'out2' / 'labels')) == [
        frame_name(stamp_of(i)) + '.png' for i in (0, 2)]


@pytest.mark.parametrize('suffix', ['.mcap', '.bag'])
def test_infer_truncated_bag_keeps_frames_before_the_cut(capsys, tmp_path, labels_model, suffix):
    images, _ = sample_folders(str(tmp_path), 8)
    bag = make_bag(capsys, str(tmp_path / f'input{suffix}'), images)
    truncate(bag, 0.6)
    code, out, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', bag, '--out',
                             tmp_path / 'out', '--save', 'labels')
    assert code == 1
    assert 'bag truncated' in err and len(err.strip().splitlines()) == 1
    assert ('offset' if suffix == '.mcap' else 'ROS 1') in err
    written = sorted(os.listdir(tmp_path / 'out' / 'labels'))
    assert 0 < len(written) < 8
    assert written == [frame_name(stamp_of(i)) + '.png' for i in range(len(written))]
    assert f'infer: {len(written)} frames' in out
    with open(tmp_path / 'out' / 'frames.csv', encoding='utf-8') as stream:
        assert len(list(csv.DictReader(stream))) == len(written)


def test_infer_skips_undecodable_frames_and_counts_them(capsys, tmp_path, labels_model,
                                                        folders):
    path = str(tmp_path / 'input.mcap')
    with bagio.BagWriter(path) as writer:
        for index, name in enumerate(sorted(os.listdir(folders[0]))[:2]):
            header = bagio.make_header(writer.store, stamp_of(index), 'cam')
            data = open(os.path.join(folders[0], name), 'rb').read()
            if index == 1:
                data = data[:200]  # a truncated PNG
            message = writer.store.types[bagio.COMPRESSED_IMAGE](
                header=header, format='png', data=np.frombuffer(data, np.uint8))
            writer.write('/cam/compressed', stamp_of(index), message)
    code, out, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', path, '--out',
                             tmp_path / 'out', '--save', 'labels')
    assert code == 0, err
    assert '1 frames' in out and '1 skipped (corrupt_compressed 1)' in out
    assert os.listdir(tmp_path / 'out' / 'labels') == [frame_name(stamp_of(0)) + '.png']


def test_infer_bad_topics_fail_with_one_line(capsys, tmp_path, labels_model, folders):
    bag = make_bag(capsys, str(tmp_path / 'input.mcap'), folders[0], '--labels', folders[1],
                   '--camera-info', _calibration(tmp_path))
    cases = [
        (['--topic', '/nope'], "image topic '/nope' not found; the bag has /camera/camera_info"),
        (['--topic', '/camera/camera_info'],
         "'/camera/camera_info' has type sensor_msgs/msg/CameraInfo; expected"),
        ([], '2 camera image topics; choose one with --topic'),
    ]
    # with a label topic named like a camera, the default topic is ambiguous
    ambiguous = make_bag(capsys, str(tmp_path / 'ambiguous.mcap'), folders[0], '--labels',
                         folders[1], '--labels-topic', '/camera2/image')
    for options, message in cases:
        target = ambiguous if not options else bag
        code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', target,
                               '--out', tmp_path / 'out', *options)
        assert code == 1 and message in err, err
        assert len(err.strip().splitlines()) == 1
    empty = tmp_path / 'empty.mcap'
    bagio.BagWriter(str(empty)).close()
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', empty, '--out',
                           tmp_path / 'out')
    assert code == 1 and 'the bag is empty' in err
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', bag)
    assert code == 2 and 'nothing to write' in err


def _calibration(tmp_path):
    path = tmp_path / 'camera.yaml'
    path.write_text('image_width: 480\nimage_height: 360\ncamera_matrix: {rows: 3, cols: 3, '
                    'data: [400, 0, 240, 0, 400, 180, 0, 0, 1]}\n')
    return str(path)


def test_infer_refuses_a_folder_with_an_earlier_run_without_overwrite(capsys, tmp_path,
                                                                      labels_model, folders):
    out = tmp_path / 'out'
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--images', folders[0],
                           '--out', out, '--save', 'labels')
    assert code == 0, err
    before = sorted(os.listdir(out / 'labels'))
    assert len(before) == 4
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--images', folders[0],
                           '--out', out, '--save', 'labels', '--max', '2')
    assert code == 1 and str(out) in err and 'earlier run' in err and '--overwrite' in err, err
    assert sorted(os.listdir(out / 'labels')) == before
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--images', folders[0],
                           '--out', out, '--save', 'labels', '--max', '2', '--overwrite')
    assert code == 0, err
    assert sorted(os.listdir(out / 'labels')) == before[:2]  # no stale frame of the first run
    with open(out / 'frames.csv', encoding='utf-8') as stream:
        assert len(list(csv.DictReader(stream))) == 2
    assert not [n for n in os.listdir(out) if n.startswith('.')]
