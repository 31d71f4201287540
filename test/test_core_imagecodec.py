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

"""Image codec: every encoding round-trips, step padding, big-endian, every bad-input reason."""

import array

from core_images import make_encoded
import cv2
import numpy as np
import pytest

from seg_perception.core.errors import InputError
from seg_perception.core.imagecodec import (array_to_buffer, compressed_format,
                                            decode_compressed, encode_compressed,
                                            ENCODINGS, image_from_buffer, MAX_PIXELS, MAX_SIDE,
                                            SUPPORTED_ENCODINGS)

TOPIC = '/cam/front/image_raw'


@pytest.fixture(scope='module')
def frame(camvid_samples):
    """Return one real CamVid frame, RGB, cropped so rows are not a multiple of 4 bytes."""
    return np.ascontiguousarray(camvid_samples[0][1][:, :474])


def padded_buffer(image, extra):
    """Return (bytes, step) of an image whose rows carry ``extra`` garbage bytes each."""
    rows = image.reshape(image.shape[0], -1).view(np.uint8)
    garbage = np.full((rows.shape[0], extra), 0xAB, np.uint8)
    return np.concatenate([rows, garbage], axis=1).tobytes(), rows.shape[1] + extra


def expect_error(reason, function, *args, **kwargs):
    """Call function, assert it raises InputError with the reason; return the message."""
    with pytest.raises(InputError) as caught:
        function(*args, **kwargs)
    assert caught.value.reason == reason, str(caught.value)
    assert '\n' not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_every_encoding_round_trips(frame, encoding):
    image = make_encoded(frame, encoding)
    data, step = array_to_buffer(image, encoding)
    assert step == image.shape[1] * image.itemsize * ENCODINGS[encoding].channels
    decoded = image_from_buffer(data, image.shape[0], image.shape[1], encoding, step)
    assert decoded.dtype == image.dtype
    assert decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, image)


@pytest.mark.parametrize('encoding', ['rgb8', 'mono8', 'bgra8', 'yuv422', 'mono16', 'rgb16'])
def test_step_padding_is_skipped(frame, encoding):
    image = make_encoded(frame, encoding)
    for extra in (2, 6, 7, 64):  # 7: odd step, rows of 16-bit data not 2-byte aligned
        data, step = padded_buffer(image, extra)
        decoded = image_from_buffer(data, image.shape[0], image.shape[1], encoding, step)
        np.testing.assert_array_equal(decoded, image)


@pytest.mark.parametrize('encoding', ['rgb8', 'mono16', 'bayer_rggb8'])
def test_odd_sizes(frame, encoding):
    image = make_encoded(np.ascontiguousarray(frame[:359, :473]), encoding)
    data, step = array_to_buffer(image, encoding)
    np.testing.assert_array_equal(image_from_buffer(data, 359, 473, encoding, step), image)


def test_yuv422_needs_an_even_width(frame):
    image = make_encoded(frame, 'uyvy')
    data, step = array_to_buffer(image, 'uyvy')
    message = expect_error('size_mismatch', image_from_buffer, data, image.shape[0],
                           image.shape[1] - 1, 'uyvy', step, source=TOPIC)
    assert 'odd' in message and TOPIC in message


def test_8bit_result_is_a_view_of_the_buffer(frame):
    data, step = padded_buffer(frame, 16)
    decoded = image_from_buffer(data, frame.shape[0], frame.shape[1], 'rgb8', step)
    assert np.shares_memory(decoded, np.frombuffer(data, np.uint8))
    assert not decoded.flags.writeable


@pytest.mark.parametrize('encoding', ['mono16', 'rgb16', 'bgra16', 'bayer_grbg16'])
def test_big_endian_16bit(frame, encoding):
    image = make_encoded(frame, encoding)
    image[0, 0] = 0x0102  # asymmetric bytes so a missed swap shows
    big = image.astype('>u2').tobytes()
    decoded = image_from_buffer(big, image.shape[0], image.shape[1], encoding,
                                len(big) // image.shape[0], is_bigendian=True)
    assert decoded.dtype == np.uint16 and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, image)
    # read as little-endian the same bytes are byte-swapped: proves the flag is honoured
    swapped = image_from_buffer(big, image.shape[0], image.shape[1], encoding,
                                len(big) // image.shape[0], is_bigendian=False)
    assert swapped.reshape(-1)[0] == 0x0201


def test_accepts_rclpy_and_rosbags_buffer_types(frame):
    image = make_encoded(frame, 'bgr8')
    data, step = array_to_buffer(image, 'bgr8')
    for buffer in (array.array('B', data), memoryview(data), bytearray(data),
                   np.frombuffer(data, np.uint8).copy()):
        decoded = image_from_buffer(buffer, image.shape[0], image.shape[1], 'bgr8', step)
        np.testing.assert_array_equal(decoded, image)


def test_bad_buffers_name_the_input_and_the_problem(frame):
    height, width = frame.shape[:2]
    data, step = array_to_buffer(frame, 'rgb8')
    message = expect_error('unknown_encoding', image_from_buffer, data, height, width, '8UC3',
                           step, source=TOPIC)
    assert TOPIC in message and '8UC3' in message and 'rgb8' in message
    expect_error('unknown_encoding', image_from_buffer, data, height, width, 'nv12', step)
    message = expect_error('empty', image_from_buffer, data, 0, width, 'rgb8', step,
                           source=TOPIC)
    assert TOPIC in message
    expect_error('empty', image_from_buffer, b'', height, width, 'rgb8', step)
    message = expect_error('too_large', image_from_buffer, data, height, MAX_SIDE + 1, 'rgb8',
                           step)
    assert str(MAX_SIDE) in message
    side = int(np.sqrt(MAX_PIXELS)) + 16  # both sides within MAX_SIDE, the area is not
    assert side <= MAX_SIDE
    expect_error('too_large', image_from_buffer, data, side, side, 'mono8', side)
    message = expect_error('step_too_small', image_from_buffer, data, height, width, 'rgb8',
                           width * 3 - 1, source=TOPIC)
    assert str(width * 3 - 1) in message and TOPIC in message
    message = expect_error('data_too_short', image_from_buffer, data[:-1], height, width,
                           'rgb8', step)
    assert str(len(data) - 1) in message and str(len(data)) in message
    message = expect_error('size_mismatch', image_from_buffer, data + b'\0' * 10, height,
                           width, 'rgb8', step)
    assert str(len(data) + 10) in message
    expect_error('wrong_type', image_from_buffer, object(), height, width, 'rgb8', step)


def test_array_to_buffer_checks_the_array(frame):
    expect_error('wrong_shape', array_to_buffer, frame, 'mono8')
    expect_error('wrong_dtype', array_to_buffer, frame.astype(np.float32), 'rgb8')
    expect_error('unknown_encoding', array_to_buffer, frame, 'rgb9')
    data, step = array_to_buffer(frame[:, ::2], 'rgb8')  # strided input is packed
    assert step == frame[:, ::2].shape[1] * 3 and len(data) == step * frame.shape[0]


def test_compressed_png_round_trip_is_exact(frame):
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for encoding, expected, expected_encoding in (
            ('rgb8', bgr, 'bgr8'), ('bgr8', bgr, 'bgr8'),
            ('mono8', make_encoded(frame, 'mono8'), 'mono8'),
            ('mono16', make_encoded(frame, 'mono16'), 'mono16'),
            ('rgba8', cv2.cvtColor(frame, cv2.COLOR_RGB2BGRA), 'bgra8')):
        data = encode_compressed(make_encoded(frame, encoding), encoding, 'png')
        decoded, decoded_encoding = decode_compressed(data, compressed_format(encoding, 'png'))
        assert decoded_encoding == expected_encoding
        np.testing.assert_array_equal(decoded, expected)


def test_compressed_jpeg_round_trip_is_close(frame):
    data = encode_compressed(frame, 'rgb8', 'jpeg')
    assert data[:2] == b'\xff\xd8'
    decoded, encoding = decode_compressed(data, 'rgb8; jpeg compressed bgr8')
    assert encoding == 'bgr8'
    error = np.abs(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(int) - frame).mean()
    assert error < 4.0
    # bayer input is demosaiced before compression
    bayer = make_encoded(frame, 'bayer_rggb8')
    decoded, encoding = decode_compressed(encode_compressed(bayer, 'bayer_rggb8'), 'jpeg')
    assert encoding == 'bgr8' and decoded.shape == frame.shape


def test_bad_compressed_data(frame):
    png = encode_compressed(frame, 'rgb8', 'png')
    message = expect_error('corrupt_compressed', decode_compressed, png[:len(png) // 3], 'png',
                           source=TOPIC)
    assert TOPIC in message
    noise = np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()
    expect_error('corrupt_compressed', decode_compressed, noise, 'jpeg')
    expect_error('empty', decode_compressed, b'', 'jpeg')
    message = expect_error('unknown_encoding', decode_compressed, png, 'tiff')
    assert 'tiff' in message
    expect_error('unknown_encoding', encode_compressed, frame, 'rgb8', 'webp')


def test_compressed_format_strings():
    assert compressed_format('rgb8', 'jpeg') == 'rgb8; jpeg compressed bgr8'
    assert compressed_format('mono16', 'png') == 'mono16; png compressed mono16'
    assert compressed_format('mono16', 'jpeg') == 'mono16; jpeg compressed mono8'


BOMB_SCRIPT = r"""
import struct, sys, zlib
import cv2, numpy as np
from seg_perception.core.errors import InputError
from seg_perception.core.imagecodec import decode_compressed

def jpeg_bomb(side):
    data = bytearray(cv2.imencode('.jpg', np.zeros((64, 64, 3), np.uint8))[1].tobytes())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', side, side)
    return bytes(data)

def png_bomb(side):
    data = bytearray(cv2.imencode('.png', np.zeros((64, 64), np.uint8))[1].tobytes())
    data[16:24] = struct.pack('>II', side, side)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    return bytes(data)

for name, payload, fmt in (('jpeg', jpeg_bomb(30000), 'jpeg'), ('png', png_bomb(30000), 'png')):
    try:
        decode_compressed(payload, fmt, source=name)
        print(name, 'decoded')
    except InputError as error:
        print(name, error.reason, len(payload))
# VmHWM: this process's own peak (ru_maxrss would carry the forking parent's peak over exec)
hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))
print('maxrss_mb', int(hwm.split()[1]) // 1024)
"""


def test_decompression_bombs_are_refused_before_decoding():
    """A tiny JPEG/PNG claiming 30000x30000 is refused from its header: no gigabytes allocated."""
    import subprocess
    import sys
    output = subprocess.run([sys.executable, '-c', BOMB_SCRIPT], capture_output=True, text=True,
                            timeout=300, check=True).stdout.split('\n')
    results = dict(line.split(' ', 1) for line in output if line)
    assert results['jpeg'].startswith('too_large') and results['png'].startswith('too_large')
    assert int(results['jpeg'].split()[1]) < 1000  # the payload really is tiny
    # the interpreter with numpy, OpenCV and the core is ~100 MB; a decoded bomb is 2.7 GB
    assert int(results['maxrss_mb']) < 400, results


@pytest.mark.parametrize('payload,reason', [
    (b'GIF89a' + b'\x00' * 64, 'neither PNG nor JPEG'),
    (b'\x89PNG\r\n\x1a\n\x00\x00', 'end before the image size'),
    (b'\xff\xd8\xff\xe0\x00\x10JFIF', 'end before the image size'),
])
def test_compressed_data_of_other_formats_or_cut_headers(payload, reason):
    with pytest.raises(InputError, match=reason) as raised:
        decode_compressed(payload, 'jpeg', source='frame')
    assert raised.value.reason == 'corrupt_compressed'
