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
Model output -> label map (+ confidence) at the camera image's own size.

Logits (1xCxHxW) go through argmax and, when asked, the softmax probability of the winning class
scaled to 0..255. A model that already outputs labels (argmax fused in the graph, uint8/int32/
int64) takes the fast path. The letterbox padding is cropped away and the map is resized back to
the source size with nearest-neighbour sampling only (class ids are never interpolated).
"""

import functools
import logging
from typing import Optional, Tuple

import cv2
import numpy as np

from seg_perception.core.errors import SpecError
from seg_perception.core.preprocess import Geometry
from seg_perception.core.spec import ModelSpec


LOGGER = logging.getLogger('seg_perception')

# Pixel-centre nearest neighbour (INTER_NEAREST samples the top-left corner, shifting the map by
# half an output pixel); it is also the faster of the two in OpenCV.
LABEL_INTERPOLATION = cv2.INTER_NEAREST_EXACT
LABEL_DTYPES = (np.uint8, np.int32, np.int64)


@functools.lru_cache(maxsize=64)
def _source_rows(source_height: int, height: int) -> np.ndarray:
    """Return the source row of every output row, exactly as OpenCV's resize picks it."""
    rows = np.arange(source_height, dtype=np.int32)[:, None]
    return cv2.resize(rows, (1, height), interpolation=LABEL_INTERPOLATION)[:, 0].copy()


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """
    Resize a label-like map (HxW or HxWxC) with nearest-neighbour sampling only.

    Equal to ``cv2.resize(..., INTER_NEAREST_EXACT)`` pixel for pixel, about twice as fast when
    enlarging: nearest sampling is separable, so OpenCV resizes the width only and whole rows are
    then copied (``np.take``) instead of being sampled pixel by pixel.
    """
    source_height, source_width = array.shape[:2]
    if (source_height, source_width) == (height, width):
        return np.ascontiguousarray(array)
    rows = _source_rows(source_height, height)
    if height < source_height:  # fewer rows: pick them first, then resize the width
        array = np.take(array, rows, axis=0)
        if source_width == width:
            return array
        return cv2.resize(array, (width, height), interpolation=LABEL_INTERPOLATION)
    if source_width != width:
        array = cv2.resize(array, (width, source_height), interpolation=LABEL_INTERPOLATION)
    return np.take(array, rows, axis=0)


class Postprocessor:
    """
    Turn a model output into labels (and optional confidence) at the source size; callable.

    ``postprocessor(output, geometry, confidence=False) -> (labels, confidence)``: HxW uint8 class
    ids (255 = unlabeled) and HxW uint8 confidence (softmax max x 255) or None when not asked or
    when the model outputs labels. :meth:`decode` and :meth:`to_source` split the two steps so
    callers can run per-pixel work (drivable mask, colors) at the smaller working resolution.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.num_classes = spec.num_classes
        # uint8 label maps: ids the spec does not know become 255 (one table look-up)
        self._known_ids = np.full(256, 255, np.uint8)
        self._known_ids[:min(self.num_classes, 255)] = np.arange(min(self.num_classes, 255))
        self._warned_unknown_ids = False

    def __call__(self, output: np.ndarray, geometry: Geometry,
                 confidence: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Return labels (and confidence if asked) at the source image size."""
        labels, scores = self.decode(output, geometry, confidence)
        labels = self.to_source(labels, geometry)
        if scores is not None:
            scores = self.to_source(scores, geometry)
        return labels, scores

    def decode(self, output: np.ndarray, geometry: Geometry,
               confidence: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """
        Return labels (and confidence) of the image content at the output's resolution.

        The letterbox padding is cropped away; the result still has to go through
        :meth:`to_source` to reach the camera size.
        """
        output = np.asarray(output)
        if self.spec.output_kind == 'labels_confidence':
            labels, scores = self._labels_and_confidence(output)
            scores = scores if confidence else None
        elif self.spec.output_kind == 'labels' or output.dtype in LABEL_DTYPES:
            labels = self._labels_from_ids(output)
            scores = None
        else:
            labels, scores = self._labels_from_logits(output, confidence)
        rows, cols = geometry.content_slices(labels.shape)
        labels = labels[rows, cols]
        if scores is not None:
            scores = scores[rows, cols]
        return labels, scores

    def to_source(self, array: np.ndarray, geometry: Geometry) -> np.ndarray:
        """Resize a map of the content region (labels, mask, colors) to the source size."""
        return resize_nearest(array, geometry.source_height, geometry.source_width)

    def working_is_smaller(self, output_hw: Tuple[int, int], geometry: Geometry) -> bool:
        """Return True when the content at output resolution is no larger than the source."""
        rows, cols = geometry.content_slices(output_hw)
        return (rows.stop - rows.start <= geometry.source_height
                and cols.stop - cols.start <= geometry.source_width)

    # -- helpers ---------------------------------------------------------------------------------
    def _describe(self, output: np.ndarray) -> str:
        return f'{self.spec.source}: model output of shape {output.shape} ({output.dtype})'

    def _labels_from_ids(self, output: np.ndarray) -> np.ndarray:
        if output.ndim == 4 and output.shape[:2] == (1, 1):
            output = output[0, 0]
        elif output.ndim == 3 and output.shape[0] == 1:
            output = output[0]
        if output.ndim != 2:
            raise SpecError(f'{self._describe(output)} is not a 1xHxW label map '
                            f'(spec output_kind {self.spec.output_kind!r})')
        if output.dtype == np.uint8:
            top = int(output.max())  # 6 us at 1024x512, the look-up below 150 us
            if top < self.num_classes or (top == 255 and not cv2.countNonZero(
                    cv2.inRange(output, self.num_classes, 254))):
                return output  # only known ids (and 255, unlabeled)
            labels = cv2.LUT(output, self._known_ids)
        elif output.dtype in LABEL_DTYPES:
            valid = (output >= 0) & (output < self.num_classes)
            labels = np.where(valid, output, 255).astype(np.uint8)
        else:
            raise SpecError(f'{self._describe(output)}: labels must be uint8, int32 or int64')
        if not self._warned_unknown_ids and (int(output.max()) >= self.num_classes
                                             or int(output.min()) < 0):
            unknown = ((output < 0) | (output >= self.num_classes)) & (output != 255)
            if unknown.any():  # once: a spec that does not match its model
                self._warned_unknown_ids = True
                LOGGER.warning('%s: the model outputs class ids %s that its spec (%d classes) '
                               'does not have; they are published as 255 (unlabeled)',
                               self.spec.source, np.unique(output[unknown])[:10].tolist(),
                               self.num_classes)
        return labels

    def _labels_and_confidence(self, output: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Split a fused 1 x 2 x H x W uint8 output into (labels, confidence)."""
        if output.ndim == 4 and output.shape[0] == 1:
            output = output[0]
        if output.ndim != 3 or output.shape[0] != 2 or output.dtype != np.uint8:
            raise SpecError(f'{self._describe(output)} is not 1x2xHxW uint8 labels and '
                            f'confidence (spec output_kind {self.spec.output_kind!r})')
        return self._labels_from_ids(output[0]), output[1]

    def _labels_from_logits(self, output: np.ndarray,
                            confidence: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if output.ndim == 4 and output.shape[0] == 1:
            output = output[0]
        if output.ndim != 3 or not np.issubdtype(output.dtype, np.floating):
            raise SpecError(f'{self._describe(output)} is not 1xCxHxW float logits '
                            f'(spec output_kind {self.spec.output_kind!r})')
        if output.shape[0] != self.num_classes:
            raise SpecError(f'{self._describe(output)} has {output.shape[0]} classes but the '
                            f'spec lists {self.num_classes}')
        labels = np.argmax(output, axis=0).astype(np.uint8)
        if not confidence:
            return labels, None
        logits = output.astype(np.float32, copy=False)
        best = logits.max(axis=0)
        total = np.exp(logits - best).sum(axis=0)  # softmax of the best class = 1 / total
        scores = np.clip(np.rint(255.0 / total), 0, 255).astype(np.uint8)
        return labels, scores
