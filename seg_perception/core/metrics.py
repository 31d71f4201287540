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
Segmentation metrics accumulated over a whole set, then divided (mmsegmentation style).

:class:`ConfusionMatrix` counts (ground truth, prediction) pixel pairs with one ``np.bincount``
per image; pixels whose ground truth is the ignore index are left out, and predictions outside
the classes count as wrong. Per-class IoU is NaN for a class absent from both ground truth and
prediction, and the mean IoU leaves those out. :class:`BinaryStats` does the same for one binary
mask (drivable IoU, precision, recall).
"""

from typing import Any, Dict, Optional, Sequence

import numpy as np

from seg_perception.core.errors import InputError
from seg_perception.core.spec import IGNORE_INDEX


def _check_pair(gt: np.ndarray, pred: np.ndarray) -> None:
    if not isinstance(gt, np.ndarray) or not isinstance(pred, np.ndarray):
        raise InputError('ground truth and prediction must be numpy arrays, got '
                         f'{type(gt).__name__} and {type(pred).__name__}', 'wrong_type')
    if gt.shape != pred.shape:
        raise InputError(f'ground truth of shape {gt.shape} and prediction of shape '
                         f'{pred.shape} differ', 'size_mismatch')


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


class ConfusionMatrix:
    """
    Pixel confusion matrix of ``num_classes`` classes: rows ground truth, columns prediction.

    An extra internal column collects predictions outside ``0..num_classes-1`` (they are wrong
    for every class). Ground-truth values that are neither a class nor ``ignore_index`` raise
    InputError: they mean the label map and the class table disagree.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise InputError(f'num_classes must be positive, got {num_classes}', 'bad_parameter')
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self._counts = np.zeros((self.num_classes, self.num_classes + 1), np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """Return the C x C counts (predictions outside the classes are left out)."""
        return self._counts[:, :self.num_classes]

    @property
    def total(self) -> int:
        """Return the number of counted (non-ignored) pixels."""
        return int(self._counts.sum())

    def update(self, gt: np.ndarray, pred: np.ndarray) -> 'ConfusionMatrix':
        """Add one image (or batch) of ground truth and predicted class ids; return self."""
        _check_pair(gt, pred)
        gt = gt.reshape(-1)
        pred = pred.reshape(-1)
        valid = gt != self.ignore_index
        gt = gt[valid].astype(np.int64)
        pred = pred[valid].astype(np.int64)
        if gt.size and (gt.min() < 0 or gt.max() >= self.num_classes):
            bad = np.unique(gt[(gt < 0) | (gt >= self.num_classes)])[:10].tolist()
            raise InputError(f'ground truth has values {bad} that are neither a class '
                             f'(0..{self.num_classes - 1}) nor the ignore index '
                             f'{self.ignore_index}', 'bad_labels')
        other = self.num_classes
        pred = np.where((pred < 0) | (pred >= other), other, pred)
        width = self.num_classes + 1
        counts = np.bincount(gt * width + pred, minlength=self.num_classes * width)
        self._counts += counts.reshape(self.num_classes, width)
        return self

    def merge(self, other: 'ConfusionMatrix') -> 'ConfusionMatrix':
        """Add another matrix's counts (same classes and ignore index); return self."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise InputError(f'cannot merge a {other.num_classes}-class matrix (ignore '
                             f'{other.ignore_index}) into a {self.num_classes}-class one '
                             f'(ignore {self.ignore_index})', 'size_mismatch')
        self._counts += other._counts
        return self

    def true_positives(self) -> np.ndarray:
        """Return the correctly predicted pixels per class."""
        return np.diag(self._counts[:, :self.num_classes]).astype(np.int64)

    def gt_pixels(self) -> np.ndarray:
        """Return the ground-truth pixels per class."""
        return self._counts.sum(axis=1)

    def pred_pixels(self) -> np.ndarray:
        """Return the predicted pixels per class (over non-ignored ground truth)."""
        return self._counts[:, :self.num_classes].sum(axis=0)

    def iou(self) -> np.ndarray:
        """Return per-class IoU = TP / (TP + FP + FN); NaN where a class is in neither."""
        tp = self.true_positives()
        union = self.gt_pixels() + self.pred_pixels() - tp
        return _ratio(tp, union)

    def class_accuracy(self) -> np.ndarray:
        """Return per-class recall TP / ground-truth pixels; NaN where a class is absent."""
        return _ratio(self.true_positives(), self.gt_pixels())

    def miou(self) -> float:
        """Return the mean IoU over classes present in ground truth or prediction (nanmean)."""
        values = self.iou()
        return float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')

    def pixel_accuracy(self) -> float:
        """Return correct pixels / counted pixels (NaN when nothing was counted)."""
        total = self.total
        return float(self.true_positives().sum() / total) if total else float('nan')

    def to_dict(self, class_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Return a JSON-friendly summary (NaN becomes None) with per-class IoU by name."""
        names = list(class_names) if class_names is not None else [
            str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise InputError(f'{len(names)} class names for {self.num_classes} classes',
                             'size_mismatch')
        iou = self.iou()
        accuracy = self.class_accuracy()
        return {
            'miou': _json_float(self.miou()),
            'pixel_accuracy': _json_float(self.pixel_accuracy()),
            'pixels': self.total,
            'iou': {name: _json_float(v) for name, v in zip(names, iou)},
            'class_accuracy': {name: _json_float(v) for name, v in zip(names, accuracy)},
            'gt_pixels': {name: int(v) for name, v in zip(names, self.gt_pixels())},
            'confusion': self.matrix.tolist(),
            'class_names': names,
        }


class BinaryStats:
    """True/false positives and negatives of a binary mask (e.g. drivable), summed over a set."""

    def __init__(self) -> None:
        self.tp = 0
        self.fp = 0
        self.fn = 0
        self.tn = 0

    def update(self, gt: np.ndarray, pred: np.ndarray,
               valid: Optional[np.ndarray] = None) -> 'BinaryStats':
        """Add one image; ``valid`` (bool) excludes pixels such as ignored ground truth."""
        _check_pair(gt, pred)
        gt = gt.astype(bool, copy=False)
        pred = pred.astype(bool, copy=False)
        if valid is not None:
            _check_pair(gt, valid)
            valid = valid.astype(bool, copy=False)
            gt, pred = gt[valid], pred[valid]
        tp = int(np.count_nonzero(gt & pred))
        positives_gt = int(np.count_nonzero(gt))
        positives_pred = int(np.count_nonzero(pred))
        self.tp += tp
        self.fp += positives_pred - tp
        self.fn += positives_gt - tp
        self.tn += int(gt.size) - positives_gt - positives_pred + tp
        return self

    def merge(self, other: 'BinaryStats') -> 'BinaryStats':
        """Add another accumulator's counts; return self."""
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn
        return self

    @staticmethod
    def _divide(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else float('nan')

    def iou(self) -> float:
        """Return TP / (TP + FP + FN); NaN when both masks were always empty."""
        return self._divide(self.tp, self.tp + self.fp + self.fn)

    def precision(self) -> float:
        """Return TP / (TP + FP); NaN when nothing was predicted."""
        return self._divide(self.tp, self.tp + self.fp)

    def recall(self) -> float:
        """Return TP / (TP + FN); NaN when the ground truth was always empty."""
        return self._divide(self.tp, self.tp + self.fn)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-friendly summary (NaN becomes None)."""
        return {'iou': _json_float(self.iou()), 'precision': _json_float(self.precision()),
                'recall': _json_float(self.recall()), 'tp': self.tp, 'fp': self.fp,
                'fn': self.fn, 'tn': self.tn}


class ConfidenceSweep:
    """
    Precision and recall of a drivable mask gated at every confidence threshold 0..255.

    One pass per frame: the pixels of the ungated mask are histogrammed by confidence, split by
    ground truth, so ``TP(t)`` is the count of ground-truth drivable mask pixels with confidence
    >= t (a suffix sum), ``FP(t)`` likewise, and ``FN(t) = drivable ground truth - TP(t)``.
    The region steps (ego-connected region, cleanup) are taken from the ungated mask; the real
    gate (``DrivableConfig.min_confidence``) runs before them and can also cut a region off, so
    a threshold this names is re-checked with a run gated at it. Counts are integers summed
    over the set, so merging accumulators is exact.
    """

    LEVELS = 256

    def __init__(self) -> None:
        self.true = np.zeros(self.LEVELS, np.int64)  # mask pixels on drivable GT, by confidence
        self.false = np.zeros(self.LEVELS, np.int64)  # mask pixels off drivable GT
        self.gt_positives = 0

    def update(self, gt: np.ndarray, mask: np.ndarray, confidence: np.ndarray,
               valid: Optional[np.ndarray] = None) -> 'ConfidenceSweep':
        """Add one frame: drivable ground truth, the ungated mask, the uint8 confidence."""
        _check_pair(gt, mask)
        _check_pair(gt, confidence)
        if confidence.dtype != np.uint8:
            raise InputError(f'confidence must be uint8, got {confidence.dtype}', 'wrong_dtype')
        gt = gt.astype(bool, copy=False)
        mask = mask.astype(bool, copy=False)
        if valid is not None:
            _check_pair(gt, valid)
            valid = valid.astype(bool, copy=False)
            gt, mask, confidence = gt[valid], mask[valid], confidence[valid]
        self.true += np.bincount(confidence[mask & gt], minlength=self.LEVELS)
        self.false += np.bincount(confidence[mask & ~gt], minlength=self.LEVELS)
        self.gt_positives += int(np.count_nonzero(gt))
        return self

    def merge(self, other: 'ConfidenceSweep') -> 'ConfidenceSweep':
        """Add another accumulator's counts; return self."""
        self.true += other.true
        self.false += other.false
        self.gt_positives += other.gt_positives
        return self

    def curve(self) -> Dict[str, np.ndarray]:
        """Return threshold, tp, fp, fn, precision and recall arrays (index = threshold)."""
        tp = np.cumsum(self.true[::-1])[::-1]
        fp = np.cumsum(self.false[::-1])[::-1]
        fn = self.gt_positives - tp
        return {'threshold': np.arange(self.LEVELS), 'tp': tp, 'fp': fp, 'fn': fn,
                'precision': _ratio(tp, tp + fp), 'recall': _ratio(tp, tp + fn)}

    def threshold_for_precision(self, precision: float) -> Optional[int]:
        """Return the lowest threshold whose precision reaches ``precision`` (None if none)."""
        curve = self.curve()
        reached = np.nonzero(np.nan_to_num(curve['precision'], nan=0.0) >= precision)[0]
        return int(reached[0]) if reached.size else None

    def to_dict(self, thresholds: Sequence[int] = tuple(range(0, 256, 16)) + (255,)
                ) -> Dict[str, Any]:
        """Return the operating points at ``thresholds`` (JSON-friendly, NaN becomes None)."""
        curve = self.curve()
        return {'points': [{'threshold': int(t), 'precision': _json_float(curve['precision'][t]),
                            'recall': _json_float(curve['recall'][t]), 'tp': int(curve['tp'][t]),
                            'fp': int(curve['fp'][t]), 'fn': int(curve['fn'][t])}
                           for t in sorted(set(thresholds))],
                'gt_positives': self.gt_positives}


def _json_float(value: float) -> Optional[float]:
    value = float(value)
    return None if np.isnan(value) else value
