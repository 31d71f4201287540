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

"""Colorize and overlay against numpy references on real label maps."""

import numpy as np
import pytest

from seg_perception.core.colorize import colorize, overlay, palette_lut
from seg_perception.core.errors import InputError
from seg_perception.core.spec import load_class_table


@pytest.fixture(scope='module')
def palette():
    """Return the CamVid colors as a 256 x 3 table, unlabeled black."""
    table = load_class_table('camvid')
    lut = np.zeros((256, 3), np.uint8)
    for c in table.classes:
        lut[c.id] = c.color
    return lut


def test_colorize_equals_fancy_indexing(camvid_samples, palette):
    for _, _, labels in camvid_samples[:3]:
        labels = labels.copy()
        labels[0, :5] = [11, 12, 100, 254, 255]  # ids without a class
        color = colorize(labels, palette)
        np.testing.assert_array_equal(color, palette[labels])
        assert not color[0, :5].any()


def test_short_palettes_are_padded_black():
    labels = np.array([[0, 1, 2, 255]], np.uint8)
    color = colorize(labels, np.array([[10, 20, 30], [40, 50, 60]]))
    np.testing.assert_array_equal(color[0], [[10, 20, 30], [40, 50, 60], [0, 0, 0], [0, 0, 0]])
    lut = palette_lut(np.array([[10, 20, 30]]))
    assert palette_lut(lut) is lut


def test_overlay_blends_and_keeps_unlabeled_pixels(camvid_samples, palette):
    _, rgb, labels = camvid_samples[2]
    assert (labels == 255).any()
    for alpha in (0.0, 0.35, 1.0):
        blended = overlay(rgb, labels, palette, alpha)
        expected = (1 - alpha) * rgb.astype(np.float64) + alpha * palette[labels]
        unlabeled = labels == 255
        assert np.abs(blended[~unlabeled] - expected[~unlabeled]).max() <= 1
        np.testing.assert_array_equal(blended[unlabeled], rgb[unlabeled])


def test_bad_inputs(camvid_samples, palette):
    _, rgb, labels = camvid_samples[0]
    with pytest.raises(InputError, match='differ in size'):
        overlay(rgb[:10], labels, palette)
    with pytest.raises(InputError, match='alpha'):
        overlay(rgb, labels, palette, 1.5)
    with pytest.raises(InputError, match='HxW uint8'):
        colorize(labels.astype(np.int64), palette)
    with pytest.raises(InputError, match='palette'):
        colorize(labels, np.zeros((300, 3), np.uint8))
