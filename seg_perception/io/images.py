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
Image folders: the one list of image file types every command and the trainer read.

Decoding goes through the core codec, so a folder frame gets the same checks (size limits,
encodings) as a CompressedImage from a bag or a camera.
"""

import os
from pathlib import Path
from typing import List, Tuple

import numpy as np

from seg_perception.core.errors import DataError, InputError
from seg_perception.core.imagecodec import decode_compressed, to_rgb


# the formats the core codec decodes (CompressedImage formats)
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def is_image_file(path: str) -> bool:
    """Return True for a file name with one of the image extensions."""
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder: str, role: str = 'images') -> List[Path]:
    """Return the image files of a folder sorted by name; a missing/empty folder is an error."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f'{folder}: {role} folder not found')
    files = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p.name))
    if not files:
        raise DataError(f'{folder}: no images ({"/".join(IMAGE_EXTENSIONS)} files) in the {role} '
                        'folder')
    return files


def read_image(path: Path) -> Tuple[np.ndarray, str]:
    """Decode an image file with the core codec; return (array, encoding)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f'{path}: cannot read ({error.strerror})', 'unreadable') from None
    fmt = 'png' if Path(path).suffix.lower() == '.png' else 'jpeg'
    return decode_compressed(data, fmt, source=str(path))


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to H x W x 3 uint8 RGB (any encoding the codec knows)."""
    image, encoding = read_image(path)
    return to_rgb(image, encoding)


def evenly_spaced(count: int, limit: int) -> List[int]:
    """Return up to ``limit`` indices spread evenly over ``range(count)``."""
    if count <= limit:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, limit)})
