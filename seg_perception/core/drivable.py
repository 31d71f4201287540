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
Label map -> drivable mask (uint8, 0 or 255) for the ego vehicle.

Steps, each optional: pixels of the drivable classes; a confidence gate; morphological closing
(fills holes narrower than the kernel, e.g. misclassified specks inside the road) and opening
(removes speckles and thin spurs); then only regions 4-connected to the bottom image row (where
the ego vehicle is) are kept, dropping regions smaller than ``min_area`` of the image.

Kernel sizes and areas are fractions of the mask size, so the same configuration behaves the same
at model resolution and at camera resolution. Class mask, gate and connectivity commute with
nearest-neighbour upscaling, so :class:`~seg_perception.core.segmenter.Segmenter` runs them at the
model's output resolution and upscales the mask: the same regions, a fraction of the work.
"""

from dataclasses import dataclass, replace
import functools
from typing import Iterable, Optional

import cv2
import numpy as np

from seg_perception.core.errors import InputError
from seg_perception.core.spec import is_int, is_number


_KEEP = 128  # flood-fill value of kept regions (the mask itself is 0/255)
_DROP = 64  # flood-fill value of bottom-connected regions that are too small


@dataclass(frozen=True)
class DrivableConfig:
    """Clean-up parameters of the drivable mask; the single place of their defaults."""

    # pixels whose confidence (0..255) is below this are not drivable; 0 = no gate. Only models
    # with logits output have a confidence.
    min_confidence: int = 0
    # keep only regions 4-connected to the bottom image row
    connect_to_bottom: bool = True
    # drop regions smaller than this fraction of the image area
    min_area: float = 0.002
    # closing kernel (fills holes narrower than it) as a fraction of the mask width; 0 = off
    close_size: float = 0.005
    # opening kernel (removes speckles thinner than it) as a fraction of the width; 0 = off
    open_size: float = 0.005

    def __post_init__(self) -> None:
        """Validate the types and ranges; errors name the field."""
        if not is_int(self.min_confidence) or not 0 <= self.min_confidence <= 255:
            raise InputError(f'DrivableConfig.min_confidence {self.min_confidence!r} is not an '
                             'integer in 0..255', 'bad_parameter')
        if not isinstance(self.connect_to_bottom, (bool, np.bool_)):
            raise InputError(f'DrivableConfig.connect_to_bottom {self.connect_to_bottom!r} is '
                             'not a bool', 'bad_parameter')
        for name in ('min_area', 'close_size', 'open_size'):
            value = getattr(self, name)
            if not is_number(value) or not 0.0 <= value < 1.0:
                raise InputError(f'DrivableConfig.{name} {value!r} is not a number in [0, 1)',
                                 'bad_parameter')


def kernel_pixels(fraction: float, width: int) -> int:
    """Return the odd kernel size for a fraction of the mask width (1 means no-op)."""
    size = int(round(fraction * width))
    return size | 1 if size > 1 else 1


def class_mask(labels: np.ndarray, drivable_ids: Iterable[int]) -> np.ndarray:
    """Return 255 where the label is one of ``drivable_ids``, else 0 (one table look-up)."""
    lut = np.zeros(256, np.uint8)
    try:
        ids = list(drivable_ids)
    except TypeError:  # not iterable
        ids = [None]
    if not all(is_int(i) and 0 <= i < 256 for i in ids):
        raise InputError(f'drivable class ids {drivable_ids!r} must be a list of integers in '
                         '0..255', 'bad_parameter')
    lut[ids] = 255
    return cv2.LUT(labels, lut)


@functools.lru_cache(maxsize=16)
def _kernel(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _morphology(mask: np.ndarray, operation: int, fraction: float) -> np.ndarray:
    size = kernel_pixels(fraction, mask.shape[1])
    if size <= 1:
        return mask
    kernel = _kernel(size)
    # OpenCV's default border is neutral for both erosion and dilation: the image edge neither
    # grows nor eats the mask
    return cv2.morphologyEx(mask, operation, kernel)


def keep_bottom_connected(mask: np.ndarray, min_pixels: int = 0,
                          in_place: bool = False) -> np.ndarray:
    """
    Return the regions of a 0/255 mask that 4-connect to the bottom row (a new 0/255 mask).

    Each run of mask pixels in the bottom row seeds a flood fill; regions of fewer than
    ``min_pixels`` pixels are dropped. Cost is proportional to the kept area. ``in_place``
    lets the fill scribble on ``mask`` instead of a copy.
    """
    work = mask if in_place else mask.copy()
    bottom = work.shape[0] - 1
    row = work[bottom] == 255
    starts = np.flatnonzero(row & ~np.concatenate(([False], row[:-1])))
    for x in starts:
        if work[bottom, x] != 255:  # already filled from an earlier run of the same region
            continue
        area = cv2.floodFill(work, None, (int(x), bottom), _KEEP, flags=4)[0]
        if area < min_pixels:
            cv2.floodFill(work, None, (int(x), bottom), _DROP, flags=4)
    # inRange, not compare: OpenCV takes a 1x1 array for a scalar and compare then fails
    return cv2.inRange(work, _KEEP, _KEEP)


def drop_small_regions(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Return the mask without its 4-connected regions of fewer than ``min_pixels`` pixels."""
    if min_pixels <= 1:
        return mask
    count, components, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    keep = (stats[:, cv2.CC_STAT_AREA] >= min_pixels).astype(np.uint8) * 255
    keep[0] = 0  # background
    return keep[components]


def drivable_mask(labels: np.ndarray, drivable_ids: Iterable[int],
                  confidence: Optional[np.ndarray] = None,
                  min_confidence: Optional[int] = None,
                  connect_to_bottom: Optional[bool] = None,
                  min_area: Optional[float] = None,
                  config: Optional[DrivableConfig] = None) -> np.ndarray:
    """
    Return the drivable mask (HxW uint8, 0 or 255) of an HxW uint8 label map.

    ``confidence`` (HxW uint8) gates pixels below ``min_confidence``. Keyword arguments left at
    None take their value from ``config`` (default :class:`DrivableConfig`).
    """
    config = config or DrivableConfig()
    overrides = {name: value for name, value in (('min_confidence', min_confidence),
                                                 ('connect_to_bottom', connect_to_bottom),
                                                 ('min_area', min_area)) if value is not None}
    if overrides:
        config = replace(config, **overrides)
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype != np.uint8:
        raise InputError(f'labels: expected an HxW uint8 label map, got shape '
                         f'{getattr(labels, "shape", None)} dtype '
                         f'{getattr(labels, "dtype", type(labels).__name__)}', 'wrong_shape')
    mask = class_mask(labels, drivable_ids)
    if confidence is not None and config.min_confidence > 0:
        if confidence.shape != labels.shape or confidence.dtype != np.uint8:
            raise InputError(f'confidence of shape {confidence.shape} ({confidence.dtype}) does '
                             f'not match labels {labels.shape} (uint8 expected)', 'size_mismatch')
        gate = cv2.inRange(confidence, int(config.min_confidence), 255)
        mask = cv2.bitwise_and(mask, gate)
    mask = _morphology(mask, cv2.MORPH_CLOSE, config.close_size)
    mask = _morphology(mask, cv2.MORPH_OPEN, config.open_size)
    min_pixels = int(round(config.min_area * mask.size))
    if config.connect_to_bottom:  # mask is our own array here: fill it in place
        return keep_bottom_connected(mask, min_pixels, in_place=True)
    return drop_small_regions(mask, min_pixels)
