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

"""Drivable mask: ego connectivity on constructed and real masks, gate, clean-up, tiny sizes."""

import itertools

from core_images import make_encoded
from core_models import export_nearest_color_model, reference_labels
import cv2
import numpy as np
import pytest

from seg_perception.core import Segmenter
from seg_perception.core.drivable import (class_mask, DrivableConfig, drivable_mask,
                                          keep_bottom_connected, kernel_pixels)
from seg_perception.core.errors import InputError
from seg_perception.core.postprocess import resize_nearest

ROAD, PAVEMENT, CAR, SKY = 3, 4, 8, 0
NO_CLEANUP = DrivableConfig(close_size=0.0, open_size=0.0, min_area=0.0)


def reference_bottom_connected(mask):
    """Keep 4-connected components touching the bottom row, via connectedComponents."""
    _, components = cv2.connectedComponents(mask, connectivity=4)
    touching = set(np.unique(components[-1])) - {0}
    keep = np.isin(components, list(touching)) & (mask > 0)
    return keep.astype(np.uint8) * 255


def scene():
    """Return a 100x480 label map: road from the bottom, an island of road, a car on the road."""
    labels = np.full((100, 480), SKY, np.uint8)
    labels[50:, :] = PAVEMENT
    labels[60:, 40:400] = ROAD  # ego road, touches the bottom
    labels[52:56, 5:30] = ROAD  # road island inside the pavement, not connected
    labels[80:90, 200:220] = CAR  # a car on the road
    labels[70, 60] = PAVEMENT  # one misclassified pixel inside the road
    return labels


def test_constructed_scene():
    mask = drivable_mask(scene(), [ROAD])
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert not mask[52:56, 5:30].any()  # island dropped
    assert kernel_pixels(DrivableConfig().close_size, 480) == 3
    # the car is wider than the closing kernel: kept out, but for its 4 corner pixels that the
    # 3x3 closing rounds off
    assert not mask[81:89, 201:219].any()
    assert np.count_nonzero(mask[80:90, 200:220]) == 4
    assert mask[70, 60] == 255  # the one-pixel hole is closed
    assert mask[99, 40:400].all() and not mask[99, :40].any()
    raw = drivable_mask(scene(), [ROAD], config=NO_CLEANUP)
    assert raw[70, 60] == 0 and not raw[52:56, 5:30].any()


def test_islands_are_kept_without_ego_connectivity():
    mask = drivable_mask(scene(), [ROAD], connect_to_bottom=False, config=NO_CLEANUP)
    assert mask[52:56, 5:30].all()
    dropped = drivable_mask(scene(), [ROAD], connect_to_bottom=False, min_area=0.01,
                            config=NO_CLEANUP)
    assert not dropped[52:56, 5:30].any() and dropped[99, 100] == 255  # 100 px < 1 % of 48000


def test_diagonal_contact_is_not_a_connection():
    labels = np.zeros((20, 20), np.uint8)
    labels[10:, 0:5] = ROAD  # touches the bottom
    labels[5:10, 5:10] = ROAD  # meets the first region only at a corner
    mask = drivable_mask(labels, [ROAD], config=NO_CLEANUP)
    assert mask[15, 2] == 255 and not mask[5:10, 5:10].any()


def test_small_bottom_regions_are_dropped():
    labels = np.zeros((100, 100), np.uint8)
    labels[60:, 10:60] = ROAD
    labels[97:, 80:83] = ROAD  # 9 pixels at the bottom edge
    mask = drivable_mask(labels, [ROAD], config=DrivableConfig(min_area=0.001, close_size=0.0,
                                                               open_size=0.0))
    assert mask[99, 30] == 255 and not mask[97:, 80:83].any()


def test_confidence_gate():
    labels = scene()
    confidence = np.full(labels.shape, 200, np.uint8)
    confidence[90:, 40:100] = 50
    gated = drivable_mask(labels, [ROAD], confidence, min_confidence=100, config=NO_CLEANUP)
    assert not gated[90:, 40:100].any() and gated[95, 150] == 255
    ungated = drivable_mask(labels, [ROAD], confidence, config=NO_CLEANUP)
    assert ungated[95, 50] == 255


def test_several_drivable_classes():
    mask = drivable_mask(scene(), [ROAD, PAVEMENT])
    assert mask[52:56, 5:30].all()  # the island now connects through the pavement


def test_flood_fill_matches_connected_components_on_real_frames(camvid_samples):
    for _, _, labels in camvid_samples:
        raw = cv2.LUT(labels, (np.arange(256) == ROAD).astype(np.uint8) * 255)
        np.testing.assert_array_equal(keep_bottom_connected(raw),
                                      reference_bottom_connected(raw))


def test_real_frames_keep_the_ego_road(camvid_samples):
    for name, _, labels in camvid_samples:
        road = labels == ROAD
        mask = drivable_mask(labels, [ROAD]) > 0
        assert mask.any(), name
        # every kept region reaches the bottom row
        np.testing.assert_array_equal(mask, reference_bottom_connected(
            mask.astype(np.uint8) * 255) > 0)
        # the clean-up changes little on ground truth: the ego road is one big region
        iou = (mask & road).sum() / (mask | road).sum()
        assert iou > 0.9, (name, iou)


def test_model_resolution_then_upscale_equals_camera_resolution(camvid_samples):
    """The shortcut Segmenter takes: class mask and connectivity commute with NEAREST."""
    for _, _, labels in camvid_samples[:4]:
        small = cv2.resize(labels, (128, 96), interpolation=cv2.INTER_NEAREST)
        confidence = np.random.default_rng(0).integers(0, 256, small.shape, np.uint8)
        config = DrivableConfig(min_confidence=60, close_size=0.0, open_size=0.0, min_area=0.0)
        upscaled = resize_nearest(drivable_mask(small, [ROAD], confidence, config=config),
                                  1200, 1920)
        full = drivable_mask(resize_nearest(small, 1200, 1920), [ROAD],
                             resize_nearest(confidence, 1200, 1920), config=config)
        np.testing.assert_array_equal(upscaled, full)


def test_kernel_sizes_scale_with_width():
    assert kernel_pixels(0.005, 1024) == 5 and kernel_pixels(0.005, 480) == 3
    assert kernel_pixels(0.0, 1920) == 1 and kernel_pixels(0.001, 100) == 1


def test_bad_arguments():
    with pytest.raises(InputError, match='min_confidence'):
        DrivableConfig(min_confidence=300)
    with pytest.raises(InputError, match='min_area'):
        DrivableConfig(min_area=1.5)
    with pytest.raises(InputError, match='HxW uint8'):
        drivable_mask(scene().astype(np.int32), [ROAD])
    with pytest.raises(InputError, match='confidence'):
        drivable_mask(scene(), [ROAD], np.zeros((5, 5), np.uint8), min_confidence=10)


def test_bad_config_and_id_types():
    for field, value in (('min_confidence', 'abc'), ('min_confidence', 1.5),
                         ('connect_to_bottom', 'no'), ('min_area', 'x'),
                         ('close_size', float('nan')), ('open_size', None)):
        with pytest.raises(InputError, match=f'DrivableConfig.{field}') as caught:
            DrivableConfig(**{field: value})
        assert caught.value.reason == 'bad_parameter'
    for ids in (['x'], [3.5], 5, [None], [256]):
        with pytest.raises(InputError, match='drivable class ids'):
            class_mask(scene(), ids)


TINY_SHAPES = [(1, 1), (1, 2), (1, 5), (2, 1), (5, 1), (2, 3)]


@pytest.mark.parametrize('shape', TINY_SHAPES)
def test_tiny_label_maps(shape):
    """Every road/sky pattern of 1x1, 1xN, Nx1 and 2x3 maps gives the reference mask."""
    for pattern in itertools.product((SKY, ROAD), repeat=shape[0] * shape[1]):
        labels = np.array(pattern, np.uint8).reshape(shape)
        raw = np.where(labels == ROAD, 255, 0).astype(np.uint8)
        expected = reference_bottom_connected(raw)
        np.testing.assert_array_equal(keep_bottom_connected(raw), expected)
        assert not keep_bottom_connected(raw, min_pixels=raw.size + 1).any()
        for config in (DrivableConfig(), NO_CLEANUP):  # the kernels are 1 pixel: no clean-up
            np.testing.assert_array_equal(drivable_mask(labels, [ROAD], config=config),
                                          expected)
        np.testing.assert_array_equal(drivable_mask(labels, [ROAD], connect_to_bottom=False),
                                      raw)
        confidence = np.full(shape, 200, np.uint8)
        np.testing.assert_array_equal(
            drivable_mask(labels, [ROAD], confidence, min_confidence=200), expected)
        assert not drivable_mask(labels, [ROAD], confidence, min_confidence=201).any()


@pytest.fixture(scope='module')
def tiny_segmenters(tmp_path_factory):
    """Return Segmenters on the nearest-color model with labels and with logits output."""
    folder = tmp_path_factory.mktemp('tiny')
    gate = DrivableConfig(min_confidence=1)
    segmenters = [Segmenter(export_nearest_color_model(folder / 'labels.onnx',
                                                       input_dtype='uint8',
                                                       output_kind='labels'), num_threads=1),
                  Segmenter(export_nearest_color_model(folder / 'logits.onnx',
                                                       input_dtype='float32',
                                                       output_kind='logits'),
                            num_threads=1, drivable_config=gate)]
    yield segmenters
    for segmenter in segmenters:
        segmenter.close()


@pytest.mark.parametrize('shape', TINY_SHAPES)
def test_tiny_images_through_the_segmenter(tiny_segmenters, shape):
    """A 1x1 (1xN, Nx1) image gets the reference labels and the matching drivable mask."""
    spec = tiny_segmenters[0].spec
    road, sky = (np.array(spec.palette()[i], np.uint8) for i in (ROAD, SKY))
    patterns = [np.ones(shape, bool), np.zeros(shape, bool),
                np.random.default_rng(sum(shape)).random(shape) < 0.5]
    for segmenter in tiny_segmenters:
        for is_road in patterns:
            rgb = np.where(is_road[..., None], road, sky)
            expected = reference_labels(rgb, spec)
            for encoding in ('rgb8', 'bgr8', 'rgba8', 'rgb16'):
                result = segmenter.process(make_encoded(rgb, encoding), encoding,
                                           confidence=True, color=True, overlay=True)
                np.testing.assert_array_equal(result.labels, expected)
                np.testing.assert_array_equal(result.drivable, drivable_mask(
                    expected, [ROAD], result.confidence, config=segmenter.drivable_config))
                np.testing.assert_array_equal(result.color, spec.palette()[expected])
                assert result.overlay.shape == shape + (3,)
            if is_road.all():
                assert (result.drivable == 255).all()
            if not is_road.any():
                assert not result.drivable.any()
            result = segmenter.process(make_encoded(rgb, 'mono8'), 'mono8')
            assert result.labels.shape == result.drivable.shape == shape
