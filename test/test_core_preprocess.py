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

"""Preprocessing: every encoding to RGB, OpenCV's bayer naming, tensors, resize and letterbox."""

from core_images import make_encoded
import cv2
import numpy as np
import pytest

from seg_perception.core.errors import InputError
from seg_perception.core.imagecodec import SUPPORTED_ENCODINGS
from seg_perception.core.imagecodec import to_rgb
from seg_perception.core.preprocess import Geometry, Preprocessor
from seg_perception.core.spec import load_class_table, ModelSpec

EXACT = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'rgb16', 'bgr16', 'rgba16', 'bgra16')


@pytest.fixture(scope='module')
def frame(camvid_samples):
    """
    Return a real CamVid image (RGB), smoothed.

    Demosaicing and chroma subsampling are then compared on image content, not pixel noise.
    """
    return cv2.GaussianBlur(camvid_samples[1][1], (5, 5), 0)


def make_spec(height=96, width=128, **fields):
    """Return a CamVid spec for a small model input."""
    table = load_class_table('camvid')
    return ModelSpec(classes=table.classes, input_height=height, input_width=width,
                     drivable_classes=table.drivable, **fields)


def mean_error(a, b):
    """Return the mean absolute difference of two images."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_to_rgb_from_every_encoding(frame, encoding):
    rgb = to_rgb(make_encoded(frame, encoding), encoding)
    assert rgb.shape == frame.shape and rgb.dtype == np.uint8
    if encoding in EXACT:
        np.testing.assert_array_equal(rgb, frame)  # 16-bit: v * 257 scaled back by dtype
    elif encoding.startswith('mono'):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        np.testing.assert_array_equal(rgb, np.dstack([gray] * 3))
    else:  # bayer demosaicing and 4:2:2 chroma subsampling lose a little
        assert mean_error(rgb, frame) < 3.0, encoding


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_names_match_sensor_msgs(frame, pattern):
    """A mosaic built by hand with sensor_msgs' pattern decodes well only under its own name."""
    mosaic = make_encoded(frame, f'bayer_{pattern}8')
    errors = {other: mean_error(to_rgb(mosaic, f'bayer_{other}8'), frame)
              for other in ('rggb', 'bggr', 'gbrg', 'grbg')}
    assert min(errors, key=errors.get) == pattern, errors
    assert all(errors[other] > 2 * errors[pattern] for other in errors if other != pattern)


def test_yuv_byte_orders_are_not_interchangeable(frame):
    uyvy = make_encoded(frame, 'uyvy')
    assert mean_error(to_rgb(uyvy, 'yuv422'), frame) < 3.0  # yuv422 is UYVY in sensor_msgs
    assert mean_error(to_rgb(uyvy, 'yuyv'), frame) > 20.0


def test_to_rgb_rejects_bad_arrays(frame):
    cases = [(frame.astype(np.float32), 'rgb8', 'wrong_dtype'),
             (frame, 'mono8', 'wrong_shape'),
             (frame[:, :, :2], 'rgb8', 'wrong_shape'),
             (frame[:0], 'rgb8', 'empty'),
             (frame.tolist(), 'rgb8', 'wrong_type'),
             (frame, 'rgb32', 'unknown_encoding')]
    for image, encoding, reason in cases:
        with pytest.raises(InputError) as caught:
            to_rgb(image, encoding)
        assert caught.value.reason == reason


@pytest.mark.parametrize('layout', ['nchw', 'nhwc'])
def test_uint8_tensor_is_resized_pixels_in_layout(frame, layout):
    spec = make_spec(input_dtype='uint8', input_layout=layout)
    tensor, geometry = Preprocessor(spec)(frame, 'rgb8')
    expected = cv2.resize(frame, (128, 96), interpolation=cv2.INTER_LINEAR)
    assert tensor.dtype == np.uint8
    pixels = tensor[0].transpose(1, 2, 0) if layout == 'nchw' else tensor[0]
    np.testing.assert_array_equal(pixels, expected)
    assert geometry == Geometry(360, 480, 96, 128, 0, 0, 96, 128)


def test_float_tensor_is_normalized_by_dtype_not_content(frame):
    spec = make_spec(input_dtype='float32', channel_order='bgr')
    mean, std = np.array(spec.mean)[::-1], np.array(spec.std)[::-1]
    tensor, _ = Preprocessor(spec)(frame, 'rgb8')
    resized = cv2.resize(frame, (128, 96), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    expected = ((resized / 255.0 - mean) / std).transpose(2, 0, 1)
    assert tensor.dtype == np.float32 and tensor.shape == (1, 3, 96, 128)
    np.testing.assert_allclose(tensor[0], expected, atol=1e-5)
    # a dark frame is not stretched: every pixel keeps (10 / 255 - mean) / std
    dark, _ = Preprocessor(spec)(np.full((40, 50, 3), 10, np.uint8), 'rgb8')
    np.testing.assert_allclose(dark[0, :, 0, 0], (10 / 255.0 - mean) / std, atol=1e-6)
    # 16-bit input of the same picture gives the same tensor within one 8-bit step (it is
    # resized at 16 bits, so it is not rounded to 8 bits first)
    wide, _ = Preprocessor(spec)(make_encoded(frame, 'rgb16'), 'rgb16')
    np.testing.assert_allclose(wide, tensor, atol=1.0 / (255 * min(spec.std)))


@pytest.mark.parametrize('dtype', ['uint8', 'float32'])
def test_same_tensor_for_every_channel_order(frame, dtype):
    preprocessor = Preprocessor(make_spec(input_dtype=dtype))
    reference = preprocessor(frame, 'rgb8')[0].copy()
    for encoding in ('bgr8', 'rgba8', 'bgra8'):
        tensor, _ = preprocessor(make_encoded(frame, encoding), encoding)
        np.testing.assert_array_equal(tensor, reference, err_msg=encoding)


def test_letterbox_geometry_and_padding(frame):
    spec = make_spec(input_dtype='uint8', resize_mode='letterbox', input_layout='nhwc')
    preprocessor = Preprocessor(spec)
    tensor, geometry = preprocessor(frame[:90], 'rgb8')  # 90x480: wide, padded top and bottom
    assert geometry == Geometry(90, 480, 96, 128, 36, 0, 24, 128)
    content = cv2.resize(frame[:90], (128, 24), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(tensor[0, 36:60], content)
    mean_color = np.round(np.array(spec.mean) * 255).astype(np.uint8)
    assert (tensor[0, :36] == mean_color).all() and (tensor[0, 60:] == mean_color).all()
    # a tall image afterwards: padding moves to the sides and the old content is gone
    tensor, geometry = preprocessor(np.ascontiguousarray(frame[:, :90]), 'rgb8')
    assert (geometry.content_top, geometry.content_height) == (0, 96)
    assert geometry.content_width == 24 and geometry.content_left == 52
    assert (tensor[0, :, :52] == mean_color).all() and (tensor[0, :, 76:] == mean_color).all()


@pytest.mark.parametrize('source', [(360, 480), (1200, 1920), (100, 37), (37, 100), (96, 128),
                                    (1, 1000)])
def test_letterbox_keeps_aspect_within_the_input(source):
    geometry = Geometry.letterbox(source, (96, 128))
    assert 0 <= geometry.content_top and geometry.content_top + geometry.content_height <= 96
    assert 0 <= geometry.content_left and geometry.content_left + geometry.content_width <= 128
    assert geometry.content_height == 96 or geometry.content_width == 128
    scale = min(96 / source[0], 128 / source[1])  # one scale for both axes, rounded (>= 1 px)
    assert abs(geometry.content_height - max(1.0, source[0] * scale)) <= 0.5
    assert abs(geometry.content_width - max(1.0, source[1] * scale)) <= 0.5
    # centred: the two pads differ by at most one pixel
    assert abs(2 * geometry.content_top + geometry.content_height - 96) <= 1
    assert abs(2 * geometry.content_left + geometry.content_width - 128) <= 1


def test_float_letterbox_pads_with_zero_after_normalization(frame):
    spec = make_spec(input_dtype='float32', resize_mode='letterbox')
    tensor, geometry = Preprocessor(spec)(frame[:90], 'rgb8')
    assert (tensor[0, :, :geometry.content_top] == 0).all()
    assert (tensor[0, :, geometry.content_top + geometry.content_height:] == 0).all()


@pytest.mark.parametrize('encoding', ['mono8', 'mono16', 'yuv422', 'yuyv', 'bayer_gbrg8',
                                      'bayer_bggr16'])
def test_other_encodings_reach_the_tensor(frame, encoding):
    spec = make_spec(input_dtype='uint8')
    tensor, _ = Preprocessor(spec)(make_encoded(frame, encoding), encoding)
    reference = cv2.resize(to_rgb(make_encoded(frame, encoding), encoding), (128, 96),
                           interpolation=cv2.INTER_LINEAR)
    # mono is resized before it is replicated, bayer/yuv after conversion: both equal the
    # reference within rounding
    assert mean_error(tensor[0].transpose(1, 2, 0), reference) < 1.0


@pytest.mark.parametrize('source, rows', [((1200, 1920), (2, 28)), ((460, 800), (3, 27))])
def test_content_at_lower_output_resolution_keeps_half_covered_borders(source, rows):
    """
    Letterboxed into 120x160, predicted at 30x40: the content starts and ends mid-row.

    The content covers rows 2.5-27.5 for a 1920x1200 camera and 3.5-26.5 for an 800x460 one;
    a border row at least half covered is kept on both sides, whatever the parity.
    """
    row_slice, column_slice = Geometry.letterbox(source, (120, 160)).content_slices((30, 40))
    assert (row_slice.start, row_slice.stop) == rows
    assert (column_slice.start, column_slice.stop) == (0, 40)
