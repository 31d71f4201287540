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
Label maps -> RGB pictures: palette look-up (OpenCV LUT) and alpha overlay on the camera image.

Visual output only: nothing here feeds back into labels or masks. Ids without a palette entry and
the unlabeled id 255 are black; in an overlay, unlabeled pixels show the camera image unchanged.
"""

from typing import Optional

import cv2
import numpy as np

from seg_perception.core.errors import InputError
from seg_perception.core.spec import IGNORE_INDEX


DEFAULT_ALPHA = 0.5


def palette_lut(palette: np.ndarray) -> np.ndarray:
    """
    Return a 256x1x3 uint8 table for ``cv2.LUT`` from an Nx3 RGB palette (N <= 256).

    Entries past N and the unlabeled id 255 are black. A table this function returned is passed
    through unchanged, so callers can build it once.
    """
    table = np.asarray(palette)
    if table.shape == (256, 1, 3) and table.dtype == np.uint8:
        return table
    if table.ndim != 2 or table.shape[1] != 3 or not 0 < table.shape[0] <= 256:
        raise InputError(f'palette of shape {table.shape} is not Nx3 with N in 1..256',
                         'wrong_shape')
    if table.min() < 0 or table.max() > 255:
        raise InputError('palette values must be in 0..255', 'wrong_dtype')
    lut = np.zeros((256, 1, 3), np.uint8)
    lut[:table.shape[0], 0] = table
    lut[IGNORE_INDEX] = 0
    return lut


def _check_labels(labels: np.ndarray, name: str = 'labels') -> np.ndarray:
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype != np.uint8:
        shape = getattr(labels, 'shape', None)
        dtype = getattr(labels, 'dtype', type(labels).__name__)
        raise InputError(f'{name}: expected an HxW uint8 label map, got shape {shape} '
                         f'dtype {dtype}', 'wrong_shape')
    return labels


def colorize(labels: np.ndarray, palette: np.ndarray,
             out: Optional[np.ndarray] = None) -> np.ndarray:
    """Return the HxWx3 RGB picture of an HxW uint8 label map (``out`` is reused if given)."""
    _check_labels(labels)
    # a user color map is a plain 256-entry table look-up from one channel to three; measured
    # 2-3x faster than cvtColor(GRAY2RGB) + LUT, and faster than colorizing the model-size map
    # and upscaling it
    return cv2.applyColorMap(labels, palette_lut(palette), dst=out)


def blend(rgb: np.ndarray, color: np.ndarray, labels: np.ndarray,
          alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Blend a colorized label map over an RGB image; unlabeled pixels keep the image."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f'overlay alpha {alpha} is outside [0, 1]', 'bad_parameter')
    if rgb.shape != color.shape or rgb.dtype != np.uint8:
        raise InputError(f'image of shape {rgb.shape} ({rgb.dtype}) does not match the label '
                         f'colors {color.shape} (uint8 RGB expected)', 'size_mismatch')
    result = cv2.addWeighted(rgb, 1.0 - alpha, color, alpha, 0.0)
    unlabeled = cv2.inRange(labels, IGNORE_INDEX, IGNORE_INDEX)  # (compare fails on 1x1)
    if cv2.countNonZero(unlabeled):
        cv2.copyTo(rgb, unlabeled, result)
    return result


def overlay(rgb: np.ndarray, labels: np.ndarray, palette: np.ndarray,
            alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Return ``rgb`` blended with the label colors: ``(1 - alpha) * rgb + alpha * color``."""
    _check_labels(labels)
    if not isinstance(rgb, np.ndarray) or rgb.shape[:2] != labels.shape:
        raise InputError(f'image of shape {getattr(rgb, "shape", None)} and labels of shape '
                         f'{labels.shape} differ in size', 'size_mismatch')
    return blend(rgb, colorize(labels, palette), labels, alpha)
