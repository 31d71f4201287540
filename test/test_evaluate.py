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

from bag_helpers import (fleet_bags, load_metrics, make_bag, run_cli, sample_folders, stamp_of,
                         truncate)
from conftest import export_test_model
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


# -- many bags (fleet), in process ----------------------------------------------------------------
GOOD_BAGS = ('mcap', 'db3', 'ros1', 'dir')


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    """Small bags of mixed formats, some damaged (see bag_helpers.fleet_bags)."""
    return fleet_bags(str(tmp_path_factory.mktemp('fleet')))


def summed(metrics_list):
    """Return the confusion matrix and drivable counts summed over several metrics.json."""
    confusion = np.sum([m['segmentation']['confusion'] for m in metrics_list], axis=0)
    drivable = {k: sum(m['drivable'][k] for m in metrics_list) for k in ('tp', 'fp', 'fn', 'tn')}
    return confusion.tolist(), drivable


def test_many_bags_in_process_sum_the_single_bag_runs(capsys, tmp_path, labels_model, fleet):
    singles = {}
    for key in GOOD_BAGS + ('truncated',):
        code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--bag', fleet[key],
                               '--report', tmp_path / key)
        assert code == (1 if key == 'truncated' else 0), err
        singles[key] = load_metrics(tmp_path / key)
    listing = tmp_path / 'bags.txt'
    order = ('db3', 'ros1', 'dir', 'truncated', 'corrupt', 'no_gt')
    listing.write_text('# the drives of the week\n\n' + '\n'.join(
        os.path.relpath(fleet[k], tmp_path) for k in order) + '\n')
    code, out, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--bag', fleet['mcap'],
                             '--bags', listing, '--report', tmp_path / 'fleet')
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert '2 of 7 bags could not be scored fully' in err and 'drive_d.bag' in err
    metrics = load_metrics(tmp_path / 'fleet')
    confusion, drivable = summed(singles.values())
    assert metrics['segmentation']['confusion'] == confusion
    assert {k: metrics['drivable'][k] for k in drivable} == drivable
    assert metrics['complete'] is False and metrics['interrupted'] is False
    evaluated = sum(m['frames']['evaluated'] for m in singles.values())
    assert metrics['frames']['evaluated'] == evaluated
    expected_frames = [dict(f, bag=fleet[k]) for k in GOOD_BAGS + ('truncated',)
                       for f in singles[k]['per_frame']]
    assert metrics['per_frame'] == expected_frames
    rows = {row['bag']: row for row in metrics['bags']}
    assert [row['bag'] for row in metrics['bags']] == [fleet[k] for k in ('mcap',) + order]
    for key in GOOD_BAGS:
        row = rows[fleet[key]]
        assert row['status'] == 'ok' and row['error'] is None
        assert row['miou'] == singles[key]['segmentation']['miou']
        assert row['road_iou'] == singles[key]['segmentation']['iou']['Road']
        assert row['drivable_precision'] == singles[key]['drivable']['precision']
        assert row['frames']['evaluated'] == singles[key]['frames']['evaluated']
        assert row['latency_ms']['p50'] > 0
    damaged = rows[fleet['truncated']]
    assert damaged['status'] == 'damaged' and 'truncated' in damaged['error']
    assert damaged['frames']['evaluated'] == singles['truncated']['frames']['evaluated'] > 0
    corrupt = rows[fleet['corrupt']]
    assert corrupt['status'] == 'unreadable' and 'cannot open bag' in corrupt['error']
    skipped = rows[fleet['no_gt']]
    assert skipped['status'] == 'skipped' and "'/camera/labels_gt' not found" in skipped['error']
    assert metrics['fleet']['runner'] == 'in-process' and metrics['fleet']['retries'] == 0
    assert metrics['fleet']['bags'] == {'total': 7, 'ok': 4, 'damaged': 1, 'unreadable': 1,
                                        'skipped': 1}
    # drive_a_0.mcap and drive_a_1.db3 are one sequence (a recording split in two files)
    sequences = {row['sequence']: row for row in metrics['sequences']}
    assert sorted(sequences) == ['drive_a', 'drive_b', 'drive_c', 'drive_d']
    drive_a = ConfusionMatrix(11)
    for key in ('mcap', 'db3'):
        drive_a._counts[:, :11] += np.asarray(singles[key]['segmentation']['confusion'])
    assert sequences['drive_a']['miou'] == pytest.approx(drive_a.miou())
    assert sequences['drive_a']['bags'] == 2 and sequences['drive_a']['frames']['evaluated'] == 6
    worst = metrics['worst_frames']
    ranked = sorted(expected_frames, key=lambda f: f['miou'])
    assert [(w['bag'], w['stamp_ns']) for w in worst] == [
        (f['bag'], f['stamp_ns']) for f in ranked[:len(worst)]]
    assert len(worst) == min(10, len(ranked))
    assert [(s['bag'], s['name']) for s in metrics['strip']['worst']] == [
        (w['bag'], w['name']) for w in worst[:3]]  # the report's picture strip, with its bags
    markdown = (tmp_path / 'fleet' / 'report.md').read_text()
    for fragment in ('## Per-bag', '## Per-sequence', '## Worst frames', 'drive_f.mcap',
                     'unreadable', 'skipped', 'INCOMPLETE', 'Road IoU'):
        assert fragment in markdown, fragment
    html = (tmp_path / 'fleet' / 'report.html').read_text()
    assert 'Per-bag' in html and 'drive_d.bag' in html
    assert 'evaluate INCOMPLETE' in out and '7 bags' in out


def test_bag_lists_and_globs_fail_before_any_work(capsys, tmp_path, fleet):
    """Bad lists are refused before the model loads (the model path here does not exist)."""
    listing = tmp_path / 'bags.txt'
    listing.write_text(f'{fleet["mcap"]}\nmissing_1.mcap\n{tmp_path}/missing_2.db3\n')
    cases = [
        (['--bags', listing], 1, '2 of 3 bags not found: missing_1.mcap'),
        (['--bags', str(tmp_path / 'nothing' / '*.mcap')], 1, 'matches no bag'),
        (['--bags', tmp_path / 'no_list.txt'], 1, 'no such file'),
        (['--bag', tmp_path / 'gone.mcap'], 1, 'gone.mcap: bag not found'),
        (['--bag', fleet['mcap'], '--bags', fleet['mcap']], 2, 'is a bag, not a list'),
        (['--bag', fleet['mcap'], '--bag', fleet['mcap']], 2, 'given twice'),
        (['--images', 'i', '--labels', 'l', '--ray'], 2, '--ray scores bags'),
        (['--bag', fleet['mcap'], '--ray-gpus', '1'], 2, '--ray-gpus goes with --ray'),
        (['--bag', fleet['mcap'], '--fail-if-worse', '1'], 2, 'two --model'),
        (['--bag', fleet['mcap'], '--model', 'a', '--model', 'b', '--model', 'c'], 2,
         'at most two'),
        (['--predictions', fleet['mcap'], '--bag', fleet['mcap'], '--bag', fleet['db3']], 2,
         'one ground-truth --bag'),
    ]
    for options, expected, fragment in cases:
        model = [] if '--model' in options else ['--model', tmp_path / 'no_model.onnx']
        code, _, err = run_cli(capsys, 'evaluate', *model, '--report', tmp_path / 'r',
                               *options)
        assert code == expected and fragment in err, (options, err)
        assert len(err.strip().splitlines()) == 1, err


def test_two_models_in_one_pass_compare_side_by_side(capsys, tmp_path, labels_model, fleet,
                                                     monkeypatch):
    other = export_test_model(tmp_path / 'other.onnx', seed=3)
    pattern = os.path.join(os.path.dirname(fleet['mcap']), 'drive_a_*')  # mcap + db3
    singles = []
    for index, model in enumerate((labels_model, other)):
        code, _, err = run_cli(capsys, 'evaluate', '--model', model, '--bags', pattern,
                               '--report', tmp_path / f'single_{index}')
        assert code == 0, err
        singles.append(load_metrics(tmp_path / f'single_{index}'))
    delta = 100 * (singles[1]['segmentation']['miou'] - singles[0]['segmentation']['miou'])
    first, second = (labels_model, other) if delta < 0 else (other, labels_model)
    a, b = singles if delta < 0 else singles[::-1]
    worse = abs(delta)  # B is this many points below A
    decoded = []
    original = framesio.decode
    monkeypatch.setattr(framesio, 'decode', lambda job: decoded.append(job) or original(job))
    code, out, err = run_cli(capsys, 'evaluate', '--model', first, '--model', second, '--bags',
                             pattern, '--report', tmp_path / 'ab')
    assert code == 0, err
    assert len(decoded) == 6  # every frame read and decoded once for both models
    metrics = load_metrics(tmp_path / 'ab')
    assert metrics['segmentation'] == a['segmentation']
    assert metrics['candidate']['segmentation'] == b['segmentation']
    assert metrics['candidate']['drivable'] == b['drivable']
    comparison = metrics['comparison']
    assert comparison['miou_delta_points'] == pytest.approx(-worse)
    for name, value in comparison['per_class_delta'].items():
        if value is not None:
            assert value == pytest.approx(b['segmentation']['iou'][name]
                                          - a['segmentation']['iou'][name])
    folder = os.path.dirname(fleet['mcap'])
    assert [row['bag'] for row in comparison['per_bag']] == [
        os.path.join(folder, 'drive_a_0.mcap'), os.path.join(folder, 'drive_a_1.db3')]
    frames = comparison['most_worse_frames']
    assert frames and all(f['delta'] < 0 for f in frames)
    assert [f['delta'] for f in frames] == sorted(f['delta'] for f in frames)
    by_frame = {(f['bag'], f['name']): f['miou'] for f in a['per_frame']}
    assert frames[0]['miou_a'] == by_frame[(frames[0]['bag'], frames[0]['name'])]
    markdown = (tmp_path / 'ab' / 'report.md').read_text()
    for fragment in ('## Comparison', '## Per-class IoU delta', '## Per-bag delta',
                     '## Frames where B is most worse than A'):
        assert fragment in markdown, fragment
    assert f'B - A {-worse:+.2f} points' in out
    # CI gate: exit 1 when B is more than POINTS below A
    code, _, err = run_cli(capsys, 'evaluate', '--model', first, '--model', second, '--bags',
                           pattern, '--report', tmp_path / 'gate', '--fail-if-worse',
                           f'{worse / 2:.6f}')
    assert code == 1 and 'points below' in err and len(err.strip().splitlines()) == 1, err
    assert load_metrics(tmp_path / 'gate')['comparison']['failed'] is True
    code, _, err = run_cli(capsys, 'evaluate', '--model', first, '--model', second, '--bags',
                           pattern, '--report', tmp_path / 'gate', '--fail-if-worse',
                           f'{worse * 2 + 0.01:.6f}')
    assert code == 0, err


def test_two_models_with_different_class_tables_need_a_map(capsys, tmp_path, labels_model,
                                                           fleet, monkeypatch):
    import shutil

    from seg_perception.core.spec import ModelSpec

    cityscapes = load_class_table('cityscapes')
    model = tmp_path / 'cityscapes_model.onnx'
    shutil.copy(labels_model, model)
    spec = Segmenter(labels_model).spec.to_dict()
    spec.update(classes=[{'id': c.id, 'name': c.name, 'color': list(c.color)}
                         for c in cityscapes.classes], dataset='cityscapes',
                drivable_classes=['road'])
    ModelSpec.from_dict(spec).save_yaml(str(tmp_path / 'cityscapes_model.yaml'))
    decoded = []
    monkeypatch.setattr(framesio, 'decode', lambda job: decoded.append(job))
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--model', model,
                           '--bag', fleet['mcap'], '--report', tmp_path / 'r')
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert 'different class tables' in err and '--classes' in err and not decoded
    monkeypatch.undo()
    # with the map, model B is mapped onto the ground truth (= model A's classes)
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--model', model,
                           '--bag', fleet['mcap'], '--classes', 'cityscapes_to_camvid',
                           '--report', tmp_path / 'mapped')
    assert code == 0, err
    metrics = load_metrics(tmp_path / 'mapped')
    code, _, err = run_cli(capsys, 'evaluate', '--model', model, '--bag', fleet['mcap'],
                           '--classes', 'cityscapes_to_camvid', '--report', tmp_path / 'alone')
    assert code == 0, err
    alone = load_metrics(tmp_path / 'alone')
    assert metrics['candidate']['segmentation'] == alone['segmentation']
    assert metrics['segmentation']['class_names'] == alone['segmentation']['class_names']


def test_ctrl_c_writes_a_partial_report_marked_incomplete(capsys, tmp_path, labels_model,
                                                          fleet, monkeypatch):
    calls = []
    original = Segmenter.process

    def process(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # the first frame of the second bag
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, 'process', process)
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--bag', fleet['mcap'],
                           '--bag', fleet['db3'], '--bag', fleet['ros1'], '--report',
                           tmp_path / 'r')
    assert code == 130 and 'interrupted' in err
    metrics = load_metrics(tmp_path / 'r')
    assert metrics['complete'] is False and metrics['interrupted'] is True
    assert [row['status'] for row in metrics['bags']] == ['ok', 'interrupted', 'not run']
    assert metrics['frames']['evaluated'] == 3
    assert 'INCOMPLETE' in (tmp_path / 'r' / 'report.md').read_text()
