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
Raw image buffers <-> numpy arrays: the one place that knows the sensor_msgs encodings.

The ROS node (from ``sensor_msgs/Image`` fields) and the rosbag tools (from ``rosbags`` messages)
both call :func:`image_from_buffer`. It returns a read-only view of the buffer (no copy) unless
the data is big-endian, honors ``step`` row padding, and rejects every malformed message with an
:class:`~seg_perception.core.errors.InputError` whose ``reason`` is one of ``unknown_encoding``,
``empty``, ``too_large``, ``step_too_small``, ``data_too_short`` or ``size_mismatch``.
Compressed images go through :func:`decode_compressed` (OpenCV ``imdecode``, reason
``corrupt_compressed``).
"""

from dataclasses import dataclass
import struct
import sys
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np

from seg_perception.core.errors import InputError


# Largest accepted image: a side over MAX_SIDE or an area over MAX_PIXELS is rejected before any
# allocation, so a corrupt header cannot make the process allocate gigabytes.
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 90


@dataclass(frozen=True)
class EncodingInfo:
    """How one sensor_msgs encoding lays out a pixel."""

    dtype: str  # numpy dtype of one channel: 'uint8' or 'uint16'
    channels: int  # values per pixel in the array image_from_buffer returns
    kind: str  # 'color', 'mono', 'bayer' or 'yuv422'

    @property
    def itemsize(self) -> int:
        """Return the bytes of one channel value."""
        return np.dtype(self.dtype).itemsize

    def shape_text(self) -> str:
        """Return the expected array shape as text, e.g. ``HxWx3``."""
        return 'HxW' if self.channels == 1 else f'HxWx{self.channels}'


def _info(dtype: str, channels: int, kind: str) -> EncodingInfo:
    return EncodingInfo(dtype, channels, kind)


# Names as in sensor_msgs/image_encodings.hpp. 'yuv422' is UYVY byte order and 'yuv422_yuy2' is
# YUYV byte order, as that header documents. 'bayer_rggb8' has R at row 0, column 0.
ENCODINGS: Dict[str, EncodingInfo] = {
    'rgb8': _info('uint8', 3, 'color'),
    'bgr8': _info('uint8', 3, 'color'),
    'rgba8': _info('uint8', 4, 'color'),
    'bgra8': _info('uint8', 4, 'color'),
    'rgb16': _info('uint16', 3, 'color'),
    'bgr16': _info('uint16', 3, 'color'),
    'rgba16': _info('uint16', 4, 'color'),
    'bgra16': _info('uint16', 4, 'color'),
    'mono8': _info('uint8', 1, 'mono'),
    'mono16': _info('uint16', 1, 'mono'),
    'bayer_rggb8': _info('uint8', 1, 'bayer'),
    'bayer_bggr8': _info('uint8', 1, 'bayer'),
    'bayer_gbrg8': _info('uint8', 1, 'bayer'),
    'bayer_grbg8': _info('uint8', 1, 'bayer'),
    'bayer_rggb16': _info('uint16', 1, 'bayer'),
    'bayer_bggr16': _info('uint16', 1, 'bayer'),
    'bayer_gbrg16': _info('uint16', 1, 'bayer'),
    'bayer_grbg16': _info('uint16', 1, 'bayer'),
    'yuv422': _info('uint8', 2, 'yuv422'),
    'uyvy': _info('uint8', 2, 'yuv422'),
    'yuyv': _info('uint8', 2, 'yuv422'),
    'yuv422_yuy2': _info('uint8', 2, 'yuv422'),
}
SUPPORTED_ENCODINGS: Tuple[str, ...] = tuple(ENCODINGS)
COMPRESSED_FORMATS: Tuple[str, ...] = ('jpeg', 'png')


def encoding_info(encoding: str, source: str = 'image') -> EncodingInfo:
    """Return the layout of an encoding; unknown names raise InputError('unknown_encoding')."""
    info = ENCODINGS.get(encoding) if isinstance(encoding, str) else None
    if info is None:
        raise InputError(f'{source}: unsupported encoding {encoding!r}; supported: '
                         f'{", ".join(SUPPORTED_ENCODINGS)}', 'unknown_encoding')
    return info


def check_size(height: int, width: int, source: str = 'image',
               info: Optional[EncodingInfo] = None) -> None:
    """Reject empty, oversized and (for YUV 4:2:2) odd-width images."""
    if height <= 0 or width <= 0:
        raise InputError(f'{source}: empty image ({height}x{width})', 'empty')
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise InputError(f'{source}: image {height}x{width} is too large (limit {MAX_SIDE} '
                         f'pixels a side, {MAX_PIXELS} pixels in all)', 'too_large')
    if info is not None and info.kind == 'yuv422' and width % 2:
        raise InputError(f'{source}: YUV 4:2:2 image width {width} is odd (pixel pairs share '
                         'chroma)', 'size_mismatch')


def check_array(image: Any, encoding: str, source: str = 'image') -> EncodingInfo:
    """
    Check that an array has the shape and dtype its encoding implies; return the layout.

    Reasons: ``unknown_encoding``, ``wrong_type``, ``wrong_shape``, ``empty``, ``too_large``,
    ``wrong_dtype``. Single-channel encodings accept HxW and HxWx1.
    """
    info = encoding_info(encoding, source)
    if not isinstance(image, np.ndarray):
        raise InputError(f'{source}: expected a numpy array, got {type(image).__name__}',
                         'wrong_type')
    channels = image.shape[2] if image.ndim == 3 else 1
    if image.ndim not in (2, 3) or channels != info.channels:
        raise InputError(f'{source}: array of shape {image.shape} does not fit encoding '
                         f'{encoding!r} (expected {info.shape_text()})', 'wrong_shape')
    check_size(image.shape[0], image.shape[1], source, info)
    if image.dtype != np.dtype(info.dtype):
        raise InputError(f'{source}: array dtype {image.dtype} does not fit encoding '
                         f'{encoding!r} (expected {info.dtype})', 'wrong_dtype')
    return info


def _as_bytes_view(data: Any, source: str) -> np.ndarray:
    """Return a flat uint8 view of bytes, array.array, memoryview or a uint8 ndarray."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise InputError(f'{source}: data array has dtype {data.dtype}, expected uint8',
                             'wrong_dtype')
        return data.reshape(-1)
    try:
        return np.frombuffer(data, np.uint8)
    except (TypeError, ValueError, BufferError):
        pass
    try:
        return np.asarray(data, np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError) as error:
        raise InputError(f'{source}: data of type {type(data).__name__} is not a byte buffer '
                         f'({error})', 'wrong_type') from None


def image_from_buffer(data: Any, height: int, width: int, encoding: str, step: int,
                      is_bigendian: bool = False, source: str = 'image') -> np.ndarray:
    """
    Return the pixels of a raw image buffer as an array, without a copy where possible.

    ``data`` is any bytes-like object (``bytes``, ``array.array``, ``memoryview`` or a uint8
    array, as rclpy and rosbags deliver it). The result is HxW for mono and bayer encodings,
    HxWx2 for the YUV 4:2:2 family, HxWx3/4 for color, in uint8 or native-order uint16. It is a
    read-only view of ``data`` unless 16-bit data has to be byte-swapped. ``source`` names the
    input in error messages (a topic, a file).
    """
    info = encoding_info(encoding, source)
    height, width, step = int(height), int(width), int(step)
    buffer = _as_bytes_view(data, source)
    if height <= 0 or width <= 0 or buffer.size == 0:
        raise InputError(f'{source}: empty image ({height}x{width}, {buffer.size} data bytes)',
                         'empty')
    check_size(height, width, source, info)
    row_bytes = width * info.channels * info.itemsize
    if step < row_bytes:
        raise InputError(f'{source}: step {step} is smaller than a {encoding} row of width '
                         f'{width} ({row_bytes} bytes)', 'step_too_small')
    expected = step * height
    if buffer.size < expected:
        raise InputError(f'{source}: data has {buffer.size} bytes, {encoding} {height}x{width} '
                         f'with step {step} needs {expected}', 'data_too_short')
    if buffer.size > expected:
        raise InputError(f'{source}: data has {buffer.size} bytes but step x height is '
                         f'{expected} ({height}x{width} {encoding})', 'size_mismatch')
    rows = buffer.reshape(height, step)[:, :row_bytes]
    if info.itemsize == 2:
        order = '>' if is_bigendian else '<'
        if step % 2:
            rows = np.ascontiguousarray(rows)  # odd step: rows are not 2-byte aligned
        values = rows.view(np.dtype(f'{order}u2'))
        if values.dtype != np.dtype(np.uint16):  # not the machine's byte order
            values = values.astype(np.uint16)
    else:
        values = rows
    if info.channels == 1:
        return values
    return values.reshape(height, width, info.channels)


def array_to_buffer(array: np.ndarray, encoding: str,
                    source: str = 'image') -> Tuple[bytes, int]:
    """
    Return ``(data, step)`` for a sensor_msgs/Image holding ``array`` with ``encoding``.

    Rows are packed (step = width x bytes per pixel) and 16-bit data is little-endian, so the
    message's ``is_bigendian`` is 0. The array is checked against the encoding first.
    """
    info = check_array(array, encoding, source)
    if info.itemsize == 2 and sys.byteorder == 'big':
        array = array.astype('<u2')
    step = array.shape[1] * info.channels * info.itemsize
    return np.ascontiguousarray(array).tobytes(), step


def _compressed_codec(format_str: str, source: str) -> str:
    """Return 'jpeg' or 'png' from a CompressedImage format ('jpeg', 'rgb8; png compressed')."""
    text = (format_str or '').lower()
    if 'png' in text:
        return 'png'
    if 'jpeg' in text or 'jpg' in text:
        return 'jpeg'
    raise InputError(f'{source}: unsupported compressed format {format_str!r}; supported: '
                     f'{", ".join(COMPRESSED_FORMATS)}', 'unknown_encoding')


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SIGNATURE = b'\xff\xd8'
# JPEG start-of-frame markers (every SOFn but DHT 0xC4, JPG 0xC8 and DAC 0xCC)
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE_MARKERS = frozenset([0x01, 0xD8] + list(range(0xD0, 0xD8)))


def compressed_size(buffer: np.ndarray, format_str: str = 'jpeg',
                    source: str = 'image') -> Tuple[int, int]:
    """
    Return (height, width) from a PNG (IHDR) or JPEG (SOF) header without decoding.

    Data that is neither PNG nor JPEG, or whose header ends before it gives the size, is
    rejected as ``corrupt_compressed``: OpenCV would otherwise decode other formats too.
    """
    head = buffer[:64].tobytes()
    if head.startswith(PNG_SIGNATURE):
        if len(head) >= 24 and head[12:16] == b'IHDR':
            width, height = struct.unpack('>II', head[16:24])
            return height, width
    elif head.startswith(JPEG_SIGNATURE):
        size = _jpeg_frame_size(buffer)
        if size is not None:
            return size
    else:
        raise InputError(f'{source}: {buffer.size} bytes labelled {format_str!r} are neither PNG '
                         'nor JPEG data', 'corrupt_compressed')
    raise InputError(f'{source}: {buffer.size} bytes of {format_str!r} data end before the '
                     'image size (corrupt or truncated header)', 'corrupt_compressed')


def _jpeg_frame_size(buffer: np.ndarray) -> Optional[Tuple[int, int]]:
    """Walk the JPEG marker segments up to the frame header; return (height, width) or None."""
    data = memoryview(buffer)
    position, end = 2, len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        length = (data[position + 2] << 8) | data[position + 3]
        if marker in JPEG_SOF_MARKERS:
            if position + 9 > end or length < 7:
                return None
            height = (data[position + 5] << 8) | data[position + 6]
            width = (data[position + 7] << 8) | data[position + 8]
            return (height, width) if height and width else None
        position += 2 + length
    return None


def decode_compressed(data: Any, format_str: str = 'jpeg',
                      source: str = 'image') -> Tuple[np.ndarray, str]:
    """
    Decode a CompressedImage payload; return ``(array, encoding)``.

    ``format_str`` is the message's ``format`` field (``jpeg``, ``png``, or image_transport's
    ``'rgb8; jpeg compressed bgr8'``). The array stays in OpenCV's order, so the encoding is
    ``bgr8``/``bgra8``/``mono8`` (or ``bgr16``/``mono16`` for 16-bit PNG).
    """
    _compressed_codec(format_str, source)
    buffer = _as_bytes_view(data, source)
    if buffer.size == 0:
        raise InputError(f'{source}: empty compressed image', 'empty')
    # the size from the header, checked before a single pixel is allocated (a 631-byte JPEG can
    # claim 30000x30000)
    height, width = compressed_size(buffer, format_str, source)
    check_size(height, width, source)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InputError(f'{source}: {buffer.size} bytes of {format_str!r} data could not be '
                         'decoded (corrupt or truncated)', 'corrupt_compressed')
    check_size(image.shape[0], image.shape[1], source)
    suffix = '16' if image.dtype == np.uint16 else '8'
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f'{source}: decoded {format_str!r} image has unsupported dtype '
                         f'{image.dtype}', 'wrong_dtype')
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        return image.reshape(image.shape[:2]), f'mono{suffix}'
    return image, ('bgr' if channels == 3 else 'bgra') + suffix


def encode_compressed(array: np.ndarray, encoding: str, fmt: str = 'jpeg',
                      quality: int = JPEG_QUALITY, source: str = 'image') -> bytes:
    """
    Encode an image as JPEG or PNG bytes (the CompressedImage ``data``).

    Color is converted to OpenCV's BGR order; bayer and YUV input is converted to color first.
    JPEG takes 8-bit data only (16-bit input is scaled by dtype); PNG keeps 16 bits and alpha.
    """
    if fmt not in COMPRESSED_FORMATS:
        raise InputError(f'{source}: unsupported compressed format {fmt!r}; supported: '
                         f'{", ".join(COMPRESSED_FORMATS)}', 'unknown_encoding')
    info = check_array(array, encoding, source)
    if info.kind in ('bayer', 'yuv422'):
        array, encoding = to_rgb(array, encoding), 'rgb8'
    elif fmt == 'jpeg' and info.itemsize == 2:
        array = cv2.convertScaleAbs(array, alpha=255.0 / 65535.0)
    if encoding.startswith('rgba'):
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGR if fmt == 'jpeg' else cv2.COLOR_RGBA2BGRA)
    elif encoding.startswith('rgb'):
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif encoding.startswith('bgra') and fmt == 'jpeg':
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == 'jpeg' else []
    ok, encoded = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', array, params)
    if not ok:
        raise InputError(f'{source}: OpenCV could not encode a {array.shape} {array.dtype} '
                         f'image as {fmt}', 'encode_failed')
    return encoded.tobytes()


def compressed_format(encoding: str, fmt: str = 'jpeg') -> str:
    """Return the CompressedImage ``format`` string image_transport writes for an encoding."""
    info = encoding_info(encoding)
    depth = '16' if info.itemsize == 2 and fmt == 'png' else '8'
    target = f'mono{depth}' if info.kind == 'mono' else f'bgr{depth}'
    return f'{encoding}; {fmt} compressed {target}'


# -- color conversion ----------------------------------------------------------------------------
UINT16_TO_UINT8 = 255.0 / 65535.0
# OpenCV's 4-letter Bayer names match sensor_msgs (bayer_rggb8 has R at row 0, column 0); the
# older 2-letter names (COLOR_BayerBG2RGB for rggb) are shifted by one pixel. Tested against a
# mosaic built by hand in test_core_preprocess.py.
_BAYER_PATTERN = {'rggb': 'RGGB', 'bggr': 'BGGR', 'gbrg': 'GBRG', 'grbg': 'GRBG'}
_YUV_ORDER = {'yuv422': 'UYVY', 'uyvy': 'UYVY', 'yuyv': 'YUY2', 'yuv422_yuy2': 'YUY2'}


def color_conversion(encoding: str, order: str = 'rgb') -> Optional[int]:
    """Return the cv2.cvtColor code from ``encoding`` to 3-channel ``order``, or None if equal."""
    info = encoding_info(encoding)
    target = order.upper()
    if info.kind == 'bayer':
        pattern = _BAYER_PATTERN[encoding.split('_')[1][:4]]
        return getattr(cv2, f'COLOR_Bayer{pattern}2{target}')
    if info.kind == 'yuv422':
        return getattr(cv2, f'COLOR_YUV2{target}_{_YUV_ORDER[encoding]}')
    if info.kind == 'mono':
        return getattr(cv2, f'COLOR_GRAY2{target}')
    source = encoding.rstrip('0123456789').upper()  # RGB, BGR, RGBA, BGRA
    if source == target:
        return None
    return getattr(cv2, f'COLOR_{source}2{target}')


def convert_color(image: np.ndarray, encoding: str, order: str = 'rgb') -> np.ndarray:
    """Return an HxWx3 image in ``order`` ('rgb' or 'bgr'), same dtype; may return the input."""
    code = color_conversion(encoding, order)
    if code is None:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return cv2.cvtColor(image, code)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale 16-bit pixels to 8 bits by dtype (65535 -> 255); uint8 input is returned as is."""
    if image.dtype == np.uint8:
        return image
    return cv2.convertScaleAbs(image, alpha=UINT16_TO_UINT8)


def to_rgb(image: np.ndarray, encoding: str) -> np.ndarray:
    """
    Return an HxWx3 uint8 RGB image from any supported encoding.

    Color order is swapped, alpha dropped, mono replicated, bayer demosaiced (bilinear), YUV 4:2:2
    converted and 16-bit data scaled by dtype. An rgb8 input is returned as is (no copy).
    """
    check_array(image, encoding)
    return to_uint8(convert_color(image, encoding, 'rgb'))
