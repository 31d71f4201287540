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
Camera image -> model tensor: channel order, resize or letterbox, normalization, layout.

Every encoding of :mod:`seg_perception.core.imagecodec` is accepted. Three- and four-channel and
mono images are resized in their own channel order first and converted at model size (cheaper,
and identical for rgb8/bgr8/rgba8 input of the same pixels); bayer and YUV 4:2:2 images are
demosaiced/converted at full size first. 16-bit pixels are scaled by their dtype (65535 -> 255),
never by content. :class:`Geometry` records what :mod:`postprocess` needs to undo the mapping.
"""

from dataclasses import dataclass
import math
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from seg_perception.core.imagecodec import check_array, convert_color, to_uint8
from seg_perception.core.spec import ModelSpec


# Same interpolation as training (seg_perception/models/data.py) so the model sees what it learnt.
IMAGE_INTERPOLATION = cv2.INTER_LINEAR
HALF_PIXEL_TOLERANCE = 1e-9  # content borders computed in floating point may miss .5 by an ulp


@dataclass(frozen=True)
class Geometry:
    """
    Where the camera image lies in the model input, so outputs can be mapped back.

    The source image (``source_height`` x ``source_width``) was resized to ``content_height`` x
    ``content_width`` and placed at (``content_top``, ``content_left``) of the model input; the
    rest of the input is padding (letterbox) or nothing (plain resize).
    """

    source_height: int
    source_width: int
    input_height: int
    input_width: int
    content_top: int = 0
    content_left: int = 0
    content_height: int = 0
    content_width: int = 0

    @classmethod
    def plain_resize(cls, source_hw: Tuple[int, int], input_hw: Tuple[int, int]) -> 'Geometry':
        """Return the geometry of a resize that fills the whole input."""
        return cls(source_hw[0], source_hw[1], input_hw[0], input_hw[1], 0, 0, *input_hw)

    @classmethod
    def letterbox(cls, source_hw: Tuple[int, int], input_hw: Tuple[int, int]) -> 'Geometry':
        """Return the geometry of an aspect-preserving resize centred in the input."""
        (height, width), (in_height, in_width) = source_hw, input_hw
        scale = min(in_height / height, in_width / width)
        content_height = min(in_height, max(1, int(round(height * scale))))
        content_width = min(in_width, max(1, int(round(width * scale))))
        return cls(height, width, in_height, in_width, (in_height - content_height) // 2,
                   (in_width - content_width) // 2, content_height, content_width)

    def content_slices(self, output_hw: Optional[Tuple[int, int]] = None) -> Tuple[slice, slice]:
        """
        Return the row and column slices of the image content in an output map.

        ``output_hw`` is the output's height and width when it differs from the input size (a
        model that predicts at a lower resolution); the content box is scaled to it. A row or
        column at the border is kept when at least half of it is content (the same rule on every
        side, whatever the parity of the sizes).
        """
        out_height, out_width = output_hw or (self.input_height, self.input_width)
        scale_y, scale_x = out_height / self.input_height, out_width / self.input_width
        top = _first_half_covered(self.content_top * scale_y)
        left = _first_half_covered(self.content_left * scale_x)
        bottom = max(top + 1, _end_half_covered(
            (self.content_top + self.content_height) * scale_y))
        right = max(left + 1, _end_half_covered(
            (self.content_left + self.content_width) * scale_x))
        return slice(top, min(bottom, out_height)), slice(left, min(right, out_width))


def _first_half_covered(start: float) -> int:
    """Return the first output row (or column) at least half covered by content from start."""
    return max(0, math.ceil(start - 0.5 - HALF_PIXEL_TOLERANCE))


def _end_half_covered(end: float) -> int:
    """Return one past the last output row (or column) at least half covered up to end."""
    return math.floor(end + 0.5 + HALF_PIXEL_TOLERANCE)


class Preprocessor:
    """
    Turn camera images into the tensor a model's spec asks for; callable.

    ``preprocessor(image, encoding) -> (tensor, geometry)``. For ``input_dtype='uint8'`` the
    tensor holds raw pixels (normalization is fused in the graph); for ``float32`` pixels are
    scaled by dtype to [0, 1] and normalized with the spec's mean/std. The layout is the spec's
    ``input_layout`` (1x3xHxW or 1xHxWx3). The returned tensor is a buffer reused by the next
    call: hand it to the backend before preprocessing the next image. Not thread-safe.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.input_hw = (spec.input_height, spec.input_width)
        dtype = np.uint8 if spec.input_dtype == 'uint8' else np.float32
        shape = ((1, 3) + self.input_hw if spec.input_layout == 'nchw'
                 else (1,) + self.input_hw + (3,))
        self._tensor = np.zeros(shape, dtype)
        self.tensor_shape = shape
        self.tensor_dtype = dtype
        order = [0, 1, 2] if spec.channel_order == 'rgb' else [2, 1, 0]
        mean = np.asarray(spec.mean, np.float32)[order]
        std = np.asarray(spec.std, np.float32)[order]
        self._mean, self._std = mean, std
        # neutral padding: the mean color (0 after normalization)
        self._pad_uint8 = np.clip(np.round(mean * 255.0), 0, 255).astype(np.uint8)
        self._geometry_cache: Dict[Tuple[int, int], Geometry] = {}
        self._filled_for: Optional[Geometry] = None

    def geometry(self, height: int, width: int) -> Geometry:
        """Return (and cache) the geometry for a source image size."""
        key = (height, width)
        geometry = self._geometry_cache.get(key)
        if geometry is None:
            if self.spec.resize_mode == 'letterbox':
                geometry = Geometry.letterbox(key, self.input_hw)
            else:
                geometry = Geometry.plain_resize(key, self.input_hw)
            if len(self._geometry_cache) > 16:
                self._geometry_cache.clear()
            self._geometry_cache[key] = geometry
        return geometry

    def __call__(self, image: np.ndarray, encoding: str = 'rgb8',
                 source: str = 'image') -> Tuple[np.ndarray, Geometry]:
        """Return the model input tensor (a reused buffer) and the geometry to undo."""
        info = check_array(image, encoding, source)
        geometry = self.geometry(image.shape[0], image.shape[1])
        size = (geometry.content_width, geometry.content_height)
        order = self.spec.channel_order
        if info.kind in ('bayer', 'yuv422'):
            pixels = convert_color(image, encoding, order)
            pixels = self._resize(pixels, size)
        else:
            if info.channels == 1 and image.ndim == 3:
                image = image[:, :, 0]
            pixels = convert_color(self._resize(image, size), encoding, order)
        self._write(pixels, geometry)
        return self._tensor, geometry

    @staticmethod
    def _resize(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        if (image.shape[1], image.shape[0]) == size:
            return image
        return cv2.resize(image, size, interpolation=IMAGE_INTERPOLATION)

    def _content_view(self, geometry: Geometry) -> np.ndarray:
        """Return the tensor's content region as an HxWx3 (possibly strided) view."""
        rows = slice(geometry.content_top, geometry.content_top + geometry.content_height)
        cols = slice(geometry.content_left, geometry.content_left + geometry.content_width)
        if self.spec.input_layout == 'nchw':
            return self._tensor[0, :, rows, cols].transpose(1, 2, 0)
        return self._tensor[0, rows, cols, :]

    def _fill_padding(self, geometry: Geometry) -> None:
        """Fill the whole tensor with the neutral pad value when the geometry changes."""
        if self._filled_for == geometry:
            return
        pad = self._pad_uint8 if self._tensor.dtype == np.uint8 else np.zeros(3, np.float32)
        if self.spec.input_layout == 'nchw':
            self._tensor[0] = pad[:, None, None]
        else:
            self._tensor[0] = pad
        self._filled_for = geometry

    def _write(self, pixels: np.ndarray, geometry: Geometry) -> None:
        """Write HxWx3 pixels (uint8 or uint16) into the tensor's content region."""
        self._fill_padding(geometry)
        view = self._content_view(geometry)
        if self._tensor.dtype == np.uint8:
            np.copyto(view, to_uint8(pixels))
            return
        max_value = 65535.0 if pixels.dtype == np.uint16 else 255.0
        scale = 1.0 / (max_value * self._std)
        offset = self._mean / self._std
        np.multiply(pixels, scale, out=view, casting='unsafe')
        view -= offset
