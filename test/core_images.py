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

"""Build camera images in every sensor_msgs encoding from real RGB frames (test helper)."""

import cv2
import numpy as np

_CHANNEL = {'r': 0, 'g': 1, 'b': 2}


def bayer_mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image through a Bayer filter; ``pattern`` names the top-left 2x2 tile."""
    mosaic = np.zeros(rgb.shape[:2], rgb.dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, _CHANNEL[pattern[k]]]
    return mosaic


def make_encoded(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Return the pixels of an RGB uint8 image as an array in ``encoding`` (made with OpenCV)."""
    wide = encoding.endswith('16')
    base = encoding[:-2] if wide else encoding[:-1] if encoding[-1] == '8' else encoding
    if base.startswith('bayer_'):
        image = bayer_mosaic(rgb, base.split('_')[1])
    elif base in ('yuv422', 'uyvy'):
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY)
    elif base in ('yuyv', 'yuv422_yuy2'):
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUYV)
    elif base == 'mono':
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        codes = {'rgb': None, 'bgr': cv2.COLOR_RGB2BGR, 'rgba': cv2.COLOR_RGB2RGBA,
                 'bgra': cv2.COLOR_RGB2BGRA}
        image = rgb.copy() if codes[base] is None else cv2.cvtColor(rgb, codes[base])
    if wide:
        image = image.astype(np.uint16) * np.uint16(257)  # 255 -> 65535: scaled by dtype
    return image
