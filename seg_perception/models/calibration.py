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
Calibration images for INT8 quantization: an image folder or a bag's image topic.

Images are returned as RGB uint8 H x W x 3 arrays at their own size; :func:`to_model_input`
turns one into the float core graph's input with the core's own preprocessing (the spec's resize
mode, letterbox padding and normalization), so INT8 ranges are calibrated on exactly what the
node will feed. At most ``limit`` images are taken, spread
evenly over the folder (sorted by name) or the topic (in log-time order).
"""

import dataclasses
import os
from typing import List, Optional

import numpy as np

from seg_perception.core.errors import DataError, InputError
from seg_perception.core.imagecodec import to_rgb
from seg_perception.core.preprocess import Preprocessor
from seg_perception.core.spec import ModelSpec
from seg_perception.io.bags import BagReader, image_from_message, IMAGE_TYPES
from seg_perception.io.images import evenly_spaced, list_images, read_rgb


DEFAULT_CALIBRATION_IMAGES = 32


def to_model_input(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Return the 1 x 3 x H x W float32 input of the float core graph for an RGB image."""
    float_spec = dataclasses.replace(spec, input_dtype='float32', input_layout='nchw')
    tensor, _ = Preprocessor(float_spec)(image, 'rgb8', source='calibration image')
    return tensor.copy()  # the preprocessor reuses its buffer


def load_calibration_images(source: str, limit: int = DEFAULT_CALIBRATION_IMAGES,
                            topic: Optional[str] = None) -> List[np.ndarray]:
    """Return up to ``limit`` RGB images from an image folder or a bag (file or directory)."""
    if limit < 1:
        raise DataError(f'{source}: the number of calibration images must be positive, '
                        f'got {limit}')
    if not os.path.exists(source):
        raise DataError(f'{source}: calibration source not found (give an image folder or a '
                        'bag)')
    if os.path.isdir(source) and not _looks_like_bag_directory(source):
        return _folder_images(source, limit)
    return _bag_images(source, limit, topic)


def _looks_like_bag_directory(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, 'metadata.yaml')) or any(
        name.endswith(('.mcap', '.db3')) for name in os.listdir(folder))


def _folder_images(folder: str, limit: int) -> List[np.ndarray]:
    paths = list_images(folder, 'calibration images')
    images = []
    for index in evenly_spaced(len(paths), limit):
        try:
            images.append(read_rgb(paths[index]))
        except InputError as error:  # names the file
            raise DataError(f'calibration image: cannot decode: {error}') from None
    return images


def _bag_images(path: str, limit: int, topic: Optional[str]) -> List[np.ndarray]:
    with BagReader(path) as bag:
        if topic is None:
            candidates = sorted(bag.topics_of_type(IMAGE_TYPES))
            if not candidates:
                raise DataError(f'{path}: no image topics for calibration; '
                                f'{bag.describe_topics()}')
            if len(candidates) > 1:
                raise DataError(f'{path}: several image topics {candidates}; choose one with '
                                '--calib-topic')
            topic = candidates[0]
        bag.require_topic(topic, role='calibration topic')
        wanted = set(evenly_spaced(bag.topics()[topic].count, limit))
        images = []
        for message in bag.messages([topic]):
            if message.index not in wanted:
                continue
            source = f'{path}: {topic} message {message.index}'
            array, encoding = image_from_message(bag.deserialize(message), message.msgtype,
                                                 source=source)
            images.append(to_rgb(array, encoding))
            if len(images) >= len(wanted):
                break
    if not images:
        raise DataError(f'{path}: topic {topic!r} gave no calibration images')
    return images
