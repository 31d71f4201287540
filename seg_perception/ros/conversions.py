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
sensor_msgs Image/CompressedImage <-> numpy: a thin layer over core.imagecodec.

Decoding (encodings, ``step`` padding, big-endian data, validation) is the core's job; this
module only moves message fields in and out. Outputs are built with ``data = array.tobytes()``
(assigning the array itself is ~300x slower in rclpy) and carry the input header.
"""

from typing import Any, Tuple

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from seg_perception.core.imagecodec import (array_to_buffer, compressed_format, decode_compressed,
                                            encode_compressed, image_from_buffer)


def image_from_msg(msg: Image, source: str = 'image') -> Tuple[np.ndarray, str]:
    """
    Return (array, encoding) of a sensor_msgs/Image; malformed messages raise InputError.

    ``source`` (the topic) names the input in error messages.
    """
    array = image_from_buffer(msg.data, msg.height, msg.width, msg.encoding, msg.step,
                              bool(msg.is_bigendian), source=source)
    return array, msg.encoding


def image_from_compressed_msg(msg: CompressedImage,
                              source: str = 'image/compressed') -> Tuple[np.ndarray, str]:
    """Return (array, encoding) of a sensor_msgs/CompressedImage (jpeg or png)."""
    return decode_compressed(msg.data, msg.format, source=source)


def image_to_msg(array: np.ndarray, encoding: str, header: Header) -> Image:
    """Return a sensor_msgs/Image holding array, with the given header (stamp and frame_id)."""
    data, step = array_to_buffer(array, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(step)
    msg.data = data
    return msg


def compressed_to_msg(array: np.ndarray, encoding: str, fmt: str,
                      header: Header) -> CompressedImage:
    """Return a sensor_msgs/CompressedImage (fmt 'jpeg' or 'png') holding array."""
    msg = CompressedImage()
    msg.header = header
    msg.format = compressed_format(encoding, fmt)
    msg.data = encode_compressed(array, encoding, fmt)
    return msg


def stamp_ns(msg: Any) -> int:
    """Return the header stamp of a message in nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
