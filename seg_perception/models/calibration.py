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
resizes and normalizes one for the float core graph. At most ``limit`` images are taken, spread
evenly over the folder (sorted by name) or the topic (in log-time order).
"""

import glob
import os
from typing import List, Optional

import cv2
import numpy as np

from seg_perception.core.errors import DataError
from seg_perception.core.spec import ModelSpec

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.tif', '.tiff')
DEFAULT_CALIBRATION_IMAGES = 32
_TO_RGB = {'rgb8': None, 'bgr8': cv2.COLOR_BGR2RGB, 'rgba8': cv2.COLOR_RGBA2RGB,
           'bgra8': cv2.COLOR_BGRA2RGB, 'mono8': cv2.COLOR_GRAY2RGB}


def to_model_input(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Return a 1 x 3 x H x W float32 tensor: resized to the spec size, /255, mean/std."""
    resized = cv2.resize(image, (spec.input_width, spec.input_height),
                         interpolation=cv2.INTER_LINEAR)
    scaled = resized.astype(np.float32) / np.float32(255.0)
    normalized = (scaled - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(normalized.transpose(2, 0, 1)[None])


def evenly_spaced(count: int, limit: int) -> List[int]:
    """Return up to ``limit`` indices spread evenly over ``range(count)``."""
    if count <= limit:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, limit)})


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
    paths = sorted(p for p in glob.glob(os.path.join(folder, '*'))
                   if p.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise DataError(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)}) for calibration')
    images = []
    for index in evenly_spaced(len(paths), limit):
        bgr = cv2.imread(paths[index], cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f'{paths[index]}: cannot decode the calibration image')
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images


def _bag_images(path: str, limit: int, topic: Optional[str]) -> List[np.ndarray]:
    from seg_perception.tools.bagio import BagReader, image_from_message, IMAGE_TYPES

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
            images.append(_to_rgb(array, encoding, source))
            if len(images) >= len(wanted):
                break
    if not images:
        raise DataError(f'{path}: topic {topic!r} gave no calibration images')
    return images


def _to_rgb(array: np.ndarray, encoding: str, source: str) -> np.ndarray:
    if encoding not in _TO_RGB:
        raise DataError(f'{source}: encoding {encoding!r} is not usable for calibration; '
                        f'use one of {sorted(_TO_RGB)}')
    code = _TO_RGB[encoding]
    return np.ascontiguousarray(array if code is None else cv2.cvtColor(array, code))
