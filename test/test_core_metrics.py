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

"""Metrics against brute-force per-class counting, on random and real CamVid label maps."""

import json

import numpy as np
import pytest

from seg_perception.core.errors import InputError
from seg_perception.core.metrics import BinaryStats, ConfusionMatrix

NUM_CLASSES = 11


def brute_force_iou(pairs, num_classes, ignore=255):
    """Return per-class IoU summed over (gt, pred) pairs with explicit loops per class."""
    tp = np.zeros(num_classes)
    fp = np.zeros(num_classes)
    fn = np.zeros(num_classes)
    correct = total = 0
    for gt, pred in pairs:
        valid = gt != ignore
        for c in range(num_classes):
            tp[c] += np.sum((gt == c) & (pred == c) & valid)
            fp[c] += np.sum((gt != c) & (pred == c) & valid)
            fn[c] += np.sum((gt == c) & (pred != c) & valid)
        correct += np.sum((gt == pred) & valid)
        total += np.sum(valid)
    union = tp + fp + fn
    iou = np.array([tp[c] / union[c] if union[c] else np.nan for c in range(num_classes)])
    return iou, correct / total


def noisy_predictions(camvid_samples, seed=0):
    """Return (gt, pred) pairs: real CamVid labels with 20 % of pixels replaced by noise."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _, _, gt in camvid_samples:
        pred = np.where(gt == 255, 0, gt).astype(np.uint8)
        flip = rng.random(gt.shape) < 0.2
        pred[flip] = rng.integers(0, NUM_CLASSES + 2, flip.sum())  # 11, 12: outside the classes
        pairs.append((gt, pred))
    return pairs


def test_confusion_matrix_matches_brute_force(camvid_samples):
    pairs = noisy_predictions(camvid_samples)
    matrix = ConfusionMatrix(NUM_CLASSES)
    for gt, pred in pairs:
        matrix.update(gt, pred)
    iou, accuracy = brute_force_iou(pairs, NUM_CLASSES)
    np.testing.assert_allclose(matrix.iou(), iou, equal_nan=True)
    assert matrix.miou() == pytest.approx(np.nanmean(iou))
    assert matrix.pixel_accuracy() == pytest.approx(accuracy)
    assert matrix.total == sum(int((gt != 255).sum()) for gt, _ in pairs)


def test_sum_then_divide_differs_from_mean_of_images(camvid_samples):
    pairs = noisy_predictions(camvid_samples, seed=1)
    total = ConfusionMatrix(NUM_CLASSES)
    per_image = []
    for gt, pred in pairs:
        one = ConfusionMatrix(NUM_CLASSES).update(gt, pred)
        per_image.append(one.miou())
        total.merge(one)
    iou, _ = brute_force_iou(pairs, NUM_CLASSES)
    assert total.miou() == pytest.approx(np.nanmean(iou))
    assert total.miou() != pytest.approx(np.mean(per_image), abs=1e-6)


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    gt = np.array([[0, 0, 1, 255]], np.uint8)
    pred = np.array([[0, 1, 1, 4]], np.uint8)
    matrix = ConfusionMatrix(5).update(gt, pred)
    iou = matrix.iou()
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(0.5)
    assert np.isnan(iou[2]) and np.isnan(iou[3])
    assert np.isnan(iou[4])  # predicted only where ground truth is ignored: still absent
    assert matrix.miou() == pytest.approx(0.5)
    assert matrix.pixel_accuracy() == pytest.approx(2 / 3)
    summary = matrix.to_dict(['a', 'b', 'c', 'd', 'e'])
    assert summary['iou']['c'] is None and summary['pixels'] == 3
    json.dumps(summary, allow_nan=False)


def test_predictions_outside_the_classes_count_as_wrong():
    gt = np.array([[0, 1, 2]], np.uint8)
    matrix = ConfusionMatrix(3).update(gt, np.array([[0, 7, 255]], np.uint8))
    np.testing.assert_allclose(matrix.iou(), [1.0, 0.0, 0.0])
    assert matrix.pixel_accuracy() == pytest.approx(1 / 3)


def test_perfect_prediction_on_real_frames(camvid_samples):
    matrix = ConfusionMatrix(NUM_CLASSES)
    for _, _, gt in camvid_samples:
        matrix.update(gt, gt)
    present = matrix.gt_pixels() > 0
    assert (matrix.iou()[present] == 1.0).all() and np.isnan(matrix.iou()[~present]).all()
    assert matrix.pixel_accuracy() == 1.0


def test_binary_stats_match_brute_force(camvid_samples):
    rng = np.random.default_rng(2)
    stats = BinaryStats()
    tp = fp = fn = 0
    for _, _, gt in camvid_samples:
        truth = gt == 3
        pred = truth ^ (rng.random(gt.shape) < 0.1)
        valid = gt != 255
        stats.update(truth, pred, valid)
        tp += np.sum(truth & pred & valid)
        fp += np.sum(~truth & pred & valid)
        fn += np.sum(truth & ~pred & valid)
    assert stats.iou() == pytest.approx(tp / (tp + fp + fn))
    assert stats.precision() == pytest.approx(tp / (tp + fp))
    assert stats.recall() == pytest.approx(tp / (tp + fn))
    merged = BinaryStats().merge(stats)
    assert merged.to_dict() == stats.to_dict()
    assert np.isnan(BinaryStats().iou())


def test_bad_inputs():
    matrix = ConfusionMatrix(3)
    with pytest.raises(InputError, match=r'\(2, 2\).*\(2, 3\)'):
        matrix.update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(InputError, match=r'values \[5\]'):
        matrix.update(np.array([[5]], np.uint8), np.array([[0]], np.uint8))
    with pytest.raises(InputError, match='merge'):
        matrix.merge(ConfusionMatrix(4))
    with pytest.raises(InputError, match='class names'):
        matrix.to_dict(['a'])


def test_confidence_sweep_counts_every_threshold_in_one_pass():
    from seg_perception.core.metrics import BinaryStats, ConfidenceSweep
    rng = np.random.default_rng(3)
    sweep, per_threshold = ConfidenceSweep(), {t: BinaryStats() for t in (0, 1, 100, 200, 255)}
    for _ in range(3):
        gt = rng.random((20, 30)) < 0.5
        mask = rng.random((20, 30)) < 0.6
        confidence = rng.integers(0, 256, (20, 30), dtype=np.uint8)
        valid = rng.random((20, 30)) < 0.9
        sweep.update(gt, mask, confidence, valid)
        for threshold, stats in per_threshold.items():
            stats.update(gt, mask & (confidence >= threshold), valid)
    curve = sweep.curve()
    for threshold, stats in per_threshold.items():
        assert (curve['tp'][threshold], curve['fp'][threshold], curve['fn'][threshold]) == \
            (stats.tp, stats.fp, stats.fn)
        assert np.isclose(curve['precision'][threshold], stats.precision(), equal_nan=True)
        assert np.isclose(curve['recall'][threshold], stats.recall())
    merged = ConfidenceSweep().merge(sweep)
    assert merged.to_dict() == sweep.to_dict()


def test_confidence_sweep_names_the_threshold_for_a_precision():
    from seg_perception.core.metrics import ConfidenceSweep
    gt = np.array([[1, 1, 0, 0]], bool)
    mask = np.ones((1, 4), bool)
    confidence = np.array([[250, 200, 150, 100]], np.uint8)  # the false ones are less sure
    sweep = ConfidenceSweep().update(gt, mask, confidence)
    assert sweep.threshold_for_precision(0.5) == 0
    assert sweep.threshold_for_precision(2 / 3) == 101
    assert sweep.threshold_for_precision(1.0) == 151
    assert sweep.curve()['recall'][151] == 1.0 and sweep.curve()['recall'][201] == 0.5
    assert ConfidenceSweep().threshold_for_precision(0.9) is None
