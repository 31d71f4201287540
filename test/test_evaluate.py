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

"""``seg-perception evaluate`` on real CamVid frames: folders, bags, recorded predictions."""

import os

from bag_helpers import (load_metrics, make_bag, run_cli, sample_folders, stamp_of,
                         truncate)
import cv2
import numpy as np
import pytest

from seg_perception.core import Segmenter
from seg_perception.core.metrics import BinaryStats, ConfusionMatrix
from seg_perception.core.spec import load_class_table
from seg_perception.io import bags as bagio
from seg_perception.io import frames as framesio

ROAD = 3


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    """Four CamVid frames with their labels."""
    return sample_folders(str(tmp_path_factory.mktemp('samples')), 4)


def sample_pairs(folders, count=None):
    """Return [(rgb, ground-truth ids with void -> 255)] of the sample files."""
    lut = load_class_table('camvid').label_lut()
    names = sorted(os.listdir(folders[0]))[:count]
    return [(cv2.cvtColor(cv2.imread(os.path.join(folders[0], n)), cv2.COLOR_BGR2RGB),
             lut[cv2.imread(os.path.join(folders[1], n), cv2.IMREAD_UNCHANGED)]) for n in names]


def direct_scores(model, pairs, class_lut=None):
    """Return the confusion matrix and drivable stats computed with the core directly."""
    segmenter = Segmenter(model)
    confusion, drivable = ConfusionMatrix(11), BinaryStats()
    for rgb, gt in pairs:
        result = segmenter.process(rgb, 'rgb8')
        pred = result.labels if class_lut is None else class_lut[result.labels]
        confusion.update(gt, pred)
        drivable.update(gt == ROAD, result.drivable > 0, gt != 255)
    return confusion, drivable


def assert_scores(metrics, confusion, drivable):
    """Check a metrics.json against directly computed scores."""
    assert metrics['segmentation']['confusion'] == confusion.matrix.tolist()
    assert metrics['segmentation']['miou'] == pytest.approx(confusion.miou())
    assert metrics['segmentation']['pixel_accuracy'] == pytest.approx(confusion.pixel_accuracy())
    assert (metrics['drivable']['tp'], metrics['drivable']['fp'], metrics['drivable']['fn']) == (
        drivable.tp, drivable.fp, drivable.fn)


def test_images_and_bag_give_identical_numbers(capsys, tmp_path, labels_model, folders):
    images, labels = folders
    code, out, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--images', images,
                             '--labels', labels, '--report', tmp_path / 'from_images')
    assert code == 0, err
    assert 'over 4 frames' in out and 'tool overhead' in out and '% of model time' in out
    bag = make_bag(capsys, str(tmp_path / 'gt.mcap'), images, '--labels', labels)
    code, out, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--bag', bag,
                             '--report', tmp_path / 'from_bag')
    assert code == 0, err
    from_images = load_metrics(tmp_path / 'from_images')
    from_bag = load_metrics(tmp_path / 'from_bag')
    assert from_images['segmentation'] == from_bag['segmentation']
    assert from_images['drivable'] == from_bag['drivable']
    assert_scores(from_bag, *direct_scores(labels_model, sample_pairs(folders)))
    assert from_bag['complete'] and from_bag['frames']['evaluated'] == 4
    assert [f['stamp_ns'] for f in from_bag['per_frame']] == [stamp_of(i) for i in range(4)]
    latency = from_bag['latency_ms']
    assert {'preprocess', 'infer', 'postprocess', 'drivable', 'total', 'segmenter'} <= set(latency)
    for stage in latency.values():
        assert stage['count'] == 4 and stage['p50'] <= stage['p95'] <= stage['p99']
    assert from_bag['throughput']['overhead_percent'] is not None
    html = (tmp_path / 'from_bag' / 'report.html').read_text()
    assert html.count('src="data:image/png;base64,') == 4
    markdown = (tmp_path / 'from_bag' / 'report.md').read_text()
    assert '| mIoU |' in markdown and '| Road |' in markdown and 'p95 ms' in markdown


def _image(store, rgb, stamp):
    return bagio.make_image(store, rgb, 'rgb8', bagio.make_header(store, stamp, 'cam'))


def _labels(store, ids, stamp):
    return bagio.make_image(store, ids, 'mono8', bagio.make_header(store, stamp, 'cam'))


def test_ground_truth_is_matched_by_stamp(capsys, tmp_path, labels_model):
    folders = sample_folders(str(tmp_path), 5)
    pairs = sample_pairs(folders)
    path = str(tmp_path / 'drive.mcap')
    with bagio.BagWriter(path) as writer:
        store = writer.store
        for index, (rgb, gt) in enumerate(pairs):
            log = stamp_of(index) + 30_000_000  # received 30 ms after the exposure
            if index == 1:  # label recorded before its image
                writer.write('/gt', log - 1, _labels(store, gt, stamp_of(index)))
            writer.write('/cam/image', log, _image(store, rgb, stamp_of(index)))
            if index in (0, 4):
                writer.write('/gt', log + 5_000_000, _labels(store, gt, stamp_of(index)))
            if index == 3:  # wrong size
                small = cv2.resize(gt, (240, 180), interpolation=cv2.INTER_NEAREST)
                writer.write('/gt', log + 5_000_000, _labels(store, small, stamp_of(index)))
        writer.write('/gt', stamp_of(0) + 40_000_000, _labels(store, pairs[0][1], stamp_of(0)))
        writer.write('/gt', stamp_of(9), _labels(store, pairs[0][1], stamp_of(9)))
    code, out, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--bag', path,
                             '--image-topic', '/cam/image', '--gt-topic', '/gt', '--report',
                             tmp_path / 'report')
    assert code == 0, err
    metrics = load_metrics(tmp_path / 'report')
    frames = metrics['frames']
    assert frames['evaluated'] == 3 and frames['skipped'] == 2
    assert frames['skip_reasons'] == {'no_gt': 1, 'gt_size_mismatch': 1}
    assert frames['gt_without_image'] == 1 and frames['duplicate_gt'] == 1
    example = frames['skip_examples']['gt_size_mismatch']
    assert 'ground truth is 240x180, the image 480x360' in example
    assert sorted(f['stamp_ns'] for f in metrics['per_frame']) == [stamp_of(i) for i in (0, 1, 4)]
    assert_scores(metrics, *direct_scores(labels_model, [pairs[i] for i in (0, 1, 4)]))
    assert '2 skipped (gt_size_mismatch 1, no_gt 1)' in out


def test_matching_edge_cases_duplicates_window_and_max(capsys, tmp_path, labels_model):
    """
    Duplicate image stamps while waiting, a label after the window, and --max.

    Images 0 and 0' share a stamp and wait for their label: the first is scored, the second
    counted as a duplicate. Image 1's label comes 6 s later (window 5 s) with nothing between:
    the image has no label and the label no image. Image 2 has none at all.
    """
    folders = sample_folders(str(tmp_path), 3)
    pairs = sample_pairs(folders)
    path = str(tmp_path / 'edges.mcap')
    second = 1_000_000_000
    with bagio.BagWriter(path) as writer:
        store = writer.store
        writer.write('/cam/image', stamp_of(0), _image(store, pairs[0][0], stamp_of(0)))
        writer.write('/cam/image', stamp_of(0) + 1, _image(store, pairs[1][0], stamp_of(0)))
        writer.write('/gt', stamp_of(0) + 2, _labels(store, pairs[0][1], stamp_of(0)))
        writer.write('/cam/image', stamp_of(1), _image(store, pairs[1][0], stamp_of(1)))
        writer.write('/gt', stamp_of(1) + 6 * second, _labels(store, pairs[1][1], stamp_of(1)))
        writer.write('/cam/image', stamp_of(1) + 7 * second,
                     _image(store, pairs[2][0], stamp_of(2)))

    def evaluate(*extra):
        code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--bag', path,
                               '--image-topic', '/cam/image', '--gt-topic', '/gt',
                               '--match-window', '5', '--report', tmp_path / 'r', *extra)
        assert code == 0, err
        return load_metrics(tmp_path / 'r')['frames']

    frames = evaluate()
    assert frames['inputs'] == 4 and frames['evaluated'] == 1
    assert frames['skip_reasons'] == {'duplicate_stamp': 1, 'no_gt': 2}
    assert frames['gt_without_image'] == 1
    frames = evaluate('--max', '3')  # the third frame is image 1, expired without a label
    assert frames['inputs'] == 3 and frames['skip_reasons'] == {'duplicate_stamp': 1, 'no_gt': 1}
    assert frames['gt_without_image'] == 0


def test_max_does_not_orphan_labels(capsys, tmp_path, labels_model, folders):
    images, labels = folders
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--images', images,
                           '--labels', labels, '--max', '2', '--report', tmp_path / 'r')
    assert code == 0, err
    frames = load_metrics(tmp_path / 'r')['frames']
    assert frames['evaluated'] == 2 and frames['gt_without_image'] == 0


def test_recorded_predictions_score_like_the_model(capsys, tmp_path, labels_model, folders):
    images, labels = folders
    bag = make_bag(capsys, str(tmp_path / 'gt.mcap'), images, '--labels', labels)
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', bag, '--out-bag',
                           tmp_path / 'predictions.mcap', '--no-input-copy')
    assert code == 0, err
    code, out, err = run_cli(capsys, 'evaluate', '--predictions', tmp_path / 'predictions.mcap',
                             '--bag', bag, '--image-topic', bagio.DEFAULT_IMAGE_TOPIC,
                             '--gt-classes', 'camvid', '--report', tmp_path / 'report')
    assert code == 0, err
    metrics = load_metrics(tmp_path / 'report')
    assert metrics['input']['mode'] == 'predictions' and metrics['model'] is None
    assert metrics['latency_ms'] == {} and metrics['frames']['evaluated'] == 4
    assert_scores(metrics, *direct_scores(labels_model, sample_pairs(folders)))
    html = (tmp_path / 'report' / 'report.html').read_text()
    assert html.count('src="data:image/png;base64,') == 3  # no latency histogram
    # labels recorded with cv_bridge passthrough (8UC1) score the same
    with bagio.BagReader(str(tmp_path / 'predictions.mcap')) as reader, \
            bagio.BagWriter(str(tmp_path / 'passthrough.mcap')) as writer:
        for message in reader.messages([bagio.DEFAULT_LABELS_TOPIC]):
            decoded = reader.deserialize(message)
            decoded.encoding = '8UC1'
            writer.write(message.topic, message.log_time, decoded)
    code, _, err = run_cli(capsys, 'evaluate', '--predictions', tmp_path / 'passthrough.mcap',
                           '--bag', bag, '--gt-classes', 'camvid', '--report',
                           tmp_path / 'report2')
    assert code == 0, err
    assert load_metrics(tmp_path / 'report2')['segmentation'] == metrics['segmentation']


def test_class_map_onto_the_ground_truth_table(capsys, tmp_path, labels_model, folders):
    mapping = tmp_path / 'map.yaml'
    table = load_class_table('camvid')
    lines = [f'{c.name}: {c.name}' for c in table.classes if c.name not in ('Pavement', 'Sky')]
    mapping.write_text('\n'.join(lines + ['Pavement: Road', 'Sky: null']) + '\n')
    code, out, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--images',
                             folders[0], '--labels', folders[1], '--classes', mapping,
                             '--gt-classes', 'camvid', '--report', tmp_path / 'report')
    assert code == 0, err
    assert 'without a ground-truth class (counted as wrong): Sky' in out
    class_lut = np.arange(256, dtype=np.uint8)
    class_lut[4], class_lut[0] = ROAD, 255
    metrics = load_metrics(tmp_path / 'report')
    assert_scores(metrics, *direct_scores(labels_model, sample_pairs(folders), class_lut))
    mapping.write_text('Asphalt: Road\n')
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--images', folders[0],
                           '--labels', folders[1], '--classes', mapping, '--gt-classes',
                           'camvid', '--report', tmp_path / 'report2')
    assert code == 1 and "'Asphalt' is not a class of the model" in err and 'Pedestrian' in err


def test_truncated_bag_gives_an_incomplete_report(capsys, tmp_path, labels_model):
    images, labels = sample_folders(str(tmp_path), 8)
    bag = make_bag(capsys, str(tmp_path / 'gt.mcap'), images, '--labels', labels)
    truncate(bag, 0.6)
    code, out, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--bag', bag,
                             '--report', tmp_path / 'report')
    assert code == 1 and 'bag truncated' in err and 'offset' in err
    metrics = load_metrics(tmp_path / 'report')
    assert metrics['complete'] is False and 'truncated' in metrics['error']
    assert 0 < metrics['frames']['evaluated'] < 8
    assert 'evaluate INCOMPLETE' in out
    assert 'INCOMPLETE' in (tmp_path / 'report' / 'report.md').read_text()
    assert 'INCOMPLETE' in (tmp_path / 'report' / 'report.html').read_text()


def test_evaluate_input_errors(capsys, tmp_path, labels_model, folders):
    images, labels = folders
    bag = make_bag(capsys, str(tmp_path / 'gt.mcap'), images)
    cases = [
        (['--images', images], '--images needs --labels'),
        (['--images', images, '--labels', labels, '--bag', bag], 'give exactly one input'),
        (['--bag', bag], "ground-truth topic '/camera/labels_gt' not found; the bag has "
                         '/camera/image_raw'),
        (['--bag', bag, '--gt-topic', '/camera/image_raw', '--image-topic', '/x'],
         "image topic '/x' not found"),
    ]
    for index, (options, message) in enumerate(cases):
        code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--report',
                               tmp_path / 'report', *options)
        assert code == (2 if index < 2 else 1) and message in err, err  # usage: 2, input: 1
        assert len(err.strip().splitlines()) == 1


def test_cityscapes_model_scored_on_camvid_with_the_bundled_map(capsys, tmp_path, labels_model,
                                                                folders):
    import shutil

    from seg_perception.core.spec import load_spec, ModelSpec
    from seg_perception.tools.evaluate import load_class_map

    # the same network, described by a sidecar as a Cityscapes model (its ids 0..10 are then
    # road, sidewalk, building, wall, fence, pole, traffic light, traffic sign, vegetation,
    # terrain, sky)
    cityscapes = load_class_table('cityscapes')
    model = tmp_path / 'cityscapes_model.onnx'
    shutil.copy(labels_model, model)
    spec = Segmenter(labels_model).spec.to_dict()
    spec.update(classes=[{'id': c.id, 'name': c.name, 'color': list(c.color)}
                         for c in cityscapes.classes],
                dataset='cityscapes', drivable_classes=['road'])
    ModelSpec.from_dict(spec).save_yaml(str(tmp_path / 'cityscapes_model.yaml'))
    assert load_spec(str(model)).dataset == 'cityscapes'
    code, out, err = run_cli(capsys, 'evaluate', '--model', model, '--images', folders[0],
                             '--labels', folders[1], '--classes', 'cityscapes_to_camvid',
                             '--report', tmp_path / 'report')
    assert code == 0, err
    metrics = load_metrics(tmp_path / 'report')
    assert metrics['input']['gt_classes'] == 'camvid' and metrics['classes'][ROAD] == 'Road'
    class_lut, unmapped = load_class_map('cityscapes_to_camvid', cityscapes.classes,
                                         load_class_table('camvid'))
    assert unmapped == []
    assert [int(class_lut[i]) for i in range(11)] == [3, 4, 1, 1, 7, 2, 6, 6, 5, 5, 0]
    confusion, _ = direct_scores(str(model), sample_pairs(folders), class_lut)
    assert metrics['segmentation']['confusion'] == confusion.matrix.tolist()


def test_bundled_table_names_win_over_folders_of_the_same_name(tmp_path, monkeypatch):
    from seg_perception.core.spec import load_class_table, resolve_class_table_path
    from seg_perception.tools.evaluate import resolve_class_map

    for name in ('camvid', 'cityscapes_to_camvid'):
        (tmp_path / name).mkdir()  # e.g. the dataset folder next to where the user works
    monkeypatch.chdir(tmp_path)
    assert resolve_class_table_path('camvid').endswith(os.path.join('classes', 'camvid.yaml'))
    assert len(load_class_table('camvid').class_names) == 11
    assert resolve_class_map('cityscapes_to_camvid').endswith('cityscapes_to_camvid.yaml')


def test_truncated_predictions_bag_is_scored_up_to_the_cut(capsys, tmp_path, labels_model):
    images, labels = sample_folders(str(tmp_path), 8)
    gt = make_bag(capsys, str(tmp_path / 'gt.mcap'), images, '--labels', labels)
    predictions = tmp_path / 'predictions.mcap'
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--bag', gt, '--out-bag',
                           predictions, '--no-input-copy')
    assert code == 0, err
    truncate(str(predictions), 0.6)
    with bagio.BagReader(str(predictions)) as reader:  # the pre-read keeps what it read
        index = framesio.index_by_stamp(reader, ['/segmentation/drivable_mask'])
    assert isinstance(index.error, bagio.BagReadError) and 'truncated' in str(index.error)
    assert 0 < len(index.messages['/segmentation/drivable_mask']) < 8

    def evaluate(report, *extra):
        code, out, err = run_cli(capsys, 'evaluate', '--predictions', predictions, '--bag', gt,
                                 '--gt-classes', 'camvid', '--report', tmp_path / report,
                                 *extra)
        assert code == 1 and 'bag truncated' in err, err
        assert len(err.strip().splitlines()) == 1
        metrics = load_metrics(tmp_path / report)
        assert metrics['complete'] is False and 'truncated' in metrics['error']
        return metrics['frames']

    without_masks = evaluate('labels_only', '--pred-drivable-topic', '/not/recorded')
    with_masks = evaluate('with_masks')
    assert without_masks['evaluated'] > 0
    # a label whose mask lies beyond the cut is skipped, not scored with another drivable mask
    assert with_masks['evaluated'] > 0
    assert (with_masks['evaluated'] + with_masks['skip_reasons'].get('bag_truncated', 0)
            == without_masks['evaluated'])


def test_drivable_operating_points_name_a_threshold_for_a_precision(tmp_path, capsys):
    """The bundled model (confidence fused): the sweep, the named threshold, a real gated run."""
    from seg_perception.core.drivable import DrivableConfig
    from seg_perception.core.resources import sample_dir
    images, labels = sample_dir('images'), sample_dir('labels')
    code, out, err = run_cli(capsys, 'evaluate', '--images', images, '--labels', labels,
                             '--report', tmp_path / 'r', '--drivable-precision', '0.98')
    assert code == 0, err
    points = load_metrics(str(tmp_path / 'r'))['drivable_operating_points']
    curve = {p['threshold']: p for p in points['points']}
    assert curve[0]['recall'] >= curve[128]['recall'] >= curve[255]['recall']
    chosen = points['recommended']
    assert chosen['precision'] >= 0.98 and 0 < chosen['threshold'] < 255
    assert f'confidence threshold {chosen["threshold"]}' in out
    html = (tmp_path / 'r' / 'report.html').read_text()
    assert 'Drivable precision and recall by confidence threshold' in html
    assert 'Drivable operating points' in (tmp_path / 'r' / 'report.md').read_text()
    # the sweep gates after the region steps; a real run gated at the threshold agrees closely
    table = load_class_table('camvid')
    gated = BinaryStats()
    config = DrivableConfig(min_confidence=chosen['threshold'])
    with Segmenter(None, drivable_config=config) as segmenter:
        road = segmenter.spec.drivable_ids
        for name in sorted(os.listdir(images)):
            rgb = cv2.cvtColor(cv2.imread(os.path.join(images, name)), cv2.COLOR_BGR2RGB)
            gt = table.label_lut()[cv2.imread(os.path.join(labels, name), 0)]
            drivable_gt = np.isin(gt, road)
            gated.update(drivable_gt, segmenter.process(rgb).drivable > 0, gt != 255)
    assert abs(gated.precision() - chosen['precision']) < 0.01
    assert abs(gated.recall() - chosen['recall']) < 0.01


def test_drivable_precision_needs_confidence_and_a_valid_value(tmp_path, capsys, labels_model):
    images, labels = sample_folders(str(tmp_path / 'data'), count=1)
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--images', images,
                           '--labels', labels, '--report', tmp_path / 'r',
                           '--drivable-precision', '0.9')
    assert code == 1 and 'gives no confidence' in err and 'labels_confidence' in err
    with pytest.raises(SystemExit) as stopped:
        run_cli(capsys, 'evaluate', '--images', images, '--labels', labels, '--report',
                tmp_path / 'r', '--drivable-precision', '0')
    assert stopped.value.code == 2 and 'must be a precision in (0, 1]' in capsys.readouterr().err
