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
CamVid-style dataset reading, validation and driving-oriented augmentation (numpy + OpenCV).

A data folder holds ``<split>/`` images and ``<split>annot/`` label maps with the same file names
(the SegNet CamVid layout). Everything is checked before training starts: a missing label, an
image/label size mismatch or a label value outside the class table stops at once with the file.
"""

from dataclasses import dataclass
import os
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from seg_perception.core.errors import DataError, InputError
from seg_perception.core.spec import ClassTable
from seg_perception.io.images import is_image_file, read_rgb


def split_dirs(root: str, split: str) -> Tuple[str, str]:
    """Return (image dir, label dir) of a split; accepts ``trainannot`` or ``train_labels``."""
    image_dir = os.path.join(root, split)
    for name in (f'{split}annot', f'{split}_labels', os.path.join(split, 'labels')):
        label_dir = os.path.join(root, name)
        if os.path.isdir(label_dir):
            return image_dir, label_dir
    raise DataError(f'{root}: no label folder for split {split!r} (expected {split}annot/ or '
                    f'{split}_labels/)')


def list_pairs(root: str, split: str) -> List[Tuple[str, str]]:
    """Return sorted (image path, label path) pairs; a missing label stops with its name."""
    image_dir, label_dir = split_dirs(root, split)
    if not os.path.isdir(image_dir):
        raise DataError(f'{image_dir}: image folder not found')
    names = sorted(n for n in os.listdir(image_dir) if is_image_file(n))
    if not names:
        raise DataError(f'{image_dir}: no images')
    pairs = []
    for name in names:
        stem = os.path.splitext(name)[0]
        label = os.path.join(label_dir, stem + '.png')
        if not os.path.exists(label):
            raise DataError(f'{os.path.join(image_dir, name)}: label {label} is missing')
        pairs.append((os.path.join(image_dir, name), label))
    return pairs


@dataclass
class Sample:
    """One decoded image (RGB uint8) and its label map (training ids, ignore = 255)."""

    name: str
    image: np.ndarray
    labels: np.ndarray


def sequence_of(path: str) -> str:
    """
    Return the recording sequence of a frame: its file name up to the first ``_``.

    CamVid names frames ``<sequence>_<frame>`` (``0016E5_08370.png``); frames of one sequence are
    near-duplicates, so a validation set must not share a sequence with the training frames.
    """
    return os.path.basename(path).split('_', 1)[0]


def select_sequences(pairs: List[Tuple[str, str]], sequences: Sequence[str], option: str
                     ) -> List[Tuple[str, str]]:
    """Keep the pairs of the named sequences; a name that matches no frame is an error."""
    available = sorted({sequence_of(image) for image, _ in pairs})
    unknown = [name for name in sequences if name not in available]
    if unknown:
        raise DataError(f'{option} {",".join(unknown)}: no frames of that sequence; the data '
                        f'holds {", ".join(available)}')
    wanted = set(sequences)
    return [pair for pair in pairs if sequence_of(pair[0]) in wanted]


def sequence_split(root: str, train_sequences: Sequence[str], val_sequences: Sequence[str]
                   ) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
    """
    Split every frame of the data folder (train and val splits pooled) by sequence.

    The training and validation sequences must not overlap: that is the point of the split.
    """
    shared = sorted(set(train_sequences) & set(val_sequences))
    if shared:
        raise DataError(f'--train-sequences and --val-sequences share {", ".join(shared)}; a '
                        'validation sequence must be one the model does not train on')
    pooled = []
    for split in ('train', 'val'):
        if os.path.isdir(os.path.join(root, split)):
            pooled += list_pairs(root, split)
    if not pooled:
        raise DataError(f'{root}: no train/ or val/ images')
    return (select_sequences(pooled, train_sequences, '--train-sequences'),
            select_sequences(pooled, val_sequences, '--val-sequences'))


def load_split(root: str, split: str, table: ClassTable, max_items: Optional[int] = None
               ) -> List[Sample]:
    """Decode and validate every pair of a split (values outside the table stop with the file)."""
    return load_pairs(list_pairs(root, split)[:max_items], table)


def load_pairs(pairs: List[Tuple[str, str]], table: ClassTable) -> List[Sample]:
    """Decode and validate (image, label) pairs (values outside the table stop with the file)."""
    lut = table.label_lut()
    allowed = {c.id for c in table.classes} | set(table.source_ignore_ids) | {table.ignore_index}
    samples = []
    for image_path, label_path in pairs:
        try:
            rgb = read_rgb(image_path)
        except InputError as error:  # names the file
            raise DataError(str(error)) from None
        raw = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise DataError(f'{label_path}: cannot decode label map')
        if raw.ndim != 2:
            raise DataError(f'{label_path}: label map must be single-channel, got shape '
                            f'{raw.shape}')
        if raw.shape != rgb.shape[:2]:
            raise DataError(f'{label_path}: label size {raw.shape[1]}x{raw.shape[0]} differs from '
                            f'image size {rgb.shape[1]}x{rgb.shape[0]}')
        values = set(np.unique(raw).tolist())
        outside = sorted(values - allowed)
        if outside:
            raise DataError(f'{label_path}: label values {outside} are outside the class table '
                            f'{table.source} (ids 0..{table.num_classes - 1}, ignore '
                            f'{sorted(set(table.source_ignore_ids) | {table.ignore_index})})')
        samples.append(Sample(os.path.basename(image_path), rgb,
                              cv2.LUT(raw.astype(np.uint8), lut)))
    return samples


def class_weights(samples: List[Sample], num_classes: int, ignore_index: int = 255,
                  power: float = 1.0) -> np.ndarray:
    """Median-frequency balancing weights (Eigen & Fergus), damped by ``power`` (1 = full)."""
    counts = np.zeros(num_classes, np.float64)
    present = np.zeros(num_classes, np.float64)
    for sample in samples:
        hist = np.bincount(sample.labels[sample.labels != ignore_index].ravel(),
                           minlength=num_classes)[:num_classes]
        counts += hist
        present += (hist > 0) * sample.labels.size
    frequency = counts / np.maximum(present, 1)
    median = np.median(frequency[frequency > 0])
    weights = np.where(frequency > 0, median / np.maximum(frequency, 1e-12), 0.0)
    return (weights ** power).astype(np.float32)


@dataclass
class AugmentConfig:
    """Augmentation for driving scenes: scale/crop, horizontal flip, photometric jitter."""

    crop_height: int = 288
    crop_width: int = 384
    scale_min: float = 0.5
    scale_max: float = 1.75
    flip: bool = True
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue_degrees: float = 8.0
    blur_probability: float = 0.15


def augment(sample: Sample, config: AugmentConfig, rng: np.random.Generator,
            ignore_index: int = 255) -> Tuple[np.ndarray, np.ndarray]:
    """Return an augmented (RGB uint8 crop, label crop) pair; padding is labelled ignore."""
    image, labels = sample.image, sample.labels
    scale = rng.uniform(config.scale_min, config.scale_max)
    height = max(1, int(round(image.shape[0] * scale)))
    width = max(1, int(round(image.shape[1] * scale)))
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    pad_h = max(0, config.crop_height - height)
    pad_w = max(0, config.crop_width - width)
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        labels = cv2.copyMakeBorder(labels, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                    value=ignore_index)
    top = rng.integers(0, image.shape[0] - config.crop_height + 1)
    left = rng.integers(0, image.shape[1] - config.crop_width + 1)
    image = image[top:top + config.crop_height, left:left + config.crop_width]
    labels = labels[top:top + config.crop_height, left:left + config.crop_width]
    if config.flip and rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    image = photometric(np.ascontiguousarray(image), config, rng)
    return image, np.ascontiguousarray(labels)


def photometric(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator
                ) -> np.ndarray:
    """Brightness/contrast/saturation/hue jitter and occasional blur (camera variation)."""
    out = image.astype(np.float32)
    out *= rng.uniform(1 - config.brightness, 1 + config.brightness)
    mean = out.mean()
    out = (out - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast) + mean
    out = np.clip(out, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] *= rng.uniform(1 - config.saturation, 1 + config.saturation)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-config.hue_degrees, config.hue_degrees) / 2) % 180
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < config.blur_probability:
        out = cv2.GaussianBlur(out, (5, 5), rng.uniform(0.5, 1.5))
    return out
