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

"""Postprocessing: exact geometry undo, labels fast path vs logits path, confidence, errors."""

import cv2
import numpy as np
import pytest

from seg_perception.core.errors import SpecError
from seg_perception.core.postprocess import Postprocessor, resize_nearest
from seg_perception.core.preprocess import Geometry, Preprocessor
from seg_perception.core.spec import load_class_table, ModelSpec


def make_spec(height=96, width=128, **fields):
    """Return a CamVid spec for a small model input."""
    table = load_class_table('camvid')
    return ModelSpec(classes=table.classes, input_height=height, input_width=width,
                     drivable_classes=table.drivable, source='test-spec.yaml', **fields)


def small_labels(camvid_samples, height, width, index=0):
    """Return a real CamVid label map at height x width (nearest)."""
    labels = camvid_samples[index][2]
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


def logits_for(labels, num_classes=11, seed=0):
    """Return 1xCxHxW float logits whose argmax is ``labels`` (255 -> class 0), with noise."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (1, num_classes) + labels.shape).astype(np.float32)
    winners = np.where(labels == 255, 0, labels)
    np.put_along_axis(logits[0], winners[None].astype(np.int64), 10.0, axis=0)
    return logits


@pytest.mark.parametrize('channels', [1, 3])
def test_resize_nearest_equals_opencv(channels):
    rng = np.random.default_rng(channels)
    sizes = [(512, 1024), (96, 128), (45, 61), (1200, 1920), (360, 480), (7, 3), (1, 1)]
    for source in sizes:
        shape = source if channels == 1 else source + (channels,)
        array = rng.integers(0, 256, shape, np.uint8)
        for target in sizes:
            ours = resize_nearest(array, *target)
            expected = cv2.resize(array, target[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
            assert ours.flags.c_contiguous
            np.testing.assert_array_equal(ours, expected, err_msg=f'{source} -> {target}')


def test_resize_geometry_undo_is_exact(camvid_samples):
    model_map = small_labels(camvid_samples, 96, 128)
    # a camera image exactly twice the model size: every model pixel becomes a 2x2 block
    camera_map = np.repeat(np.repeat(model_map, 2, axis=0), 2, axis=1)
    geometry = Preprocessor(make_spec()).geometry(192, 256)
    labels, scores = Postprocessor(make_spec(output_kind='labels'))(model_map[None], geometry)
    assert scores is None
    np.testing.assert_array_equal(labels, camera_map)


def test_letterbox_geometry_undo_is_exact(camvid_samples):
    spec = make_spec(output_kind='labels', resize_mode='letterbox')
    content = small_labels(camvid_samples, 48, 128)
    camera_map = np.repeat(np.repeat(content, 2, axis=0), 2, axis=1)  # 96x256 camera
    geometry = Preprocessor(spec).geometry(96, 256)
    assert geometry == Geometry(96, 256, 96, 128, 24, 0, 48, 128)
    output = np.full((1, 96, 128), 7, np.uint8)  # the padding predicts "Fence"
    output[0, 24:72] = content
    labels, _ = Postprocessor(spec)(output, geometry)
    np.testing.assert_array_equal(labels, camera_map)


def test_lower_resolution_output_is_scaled_to_the_content(camvid_samples):
    spec = make_spec(output_kind='labels', resize_mode='letterbox')
    geometry = Geometry(96, 256, 96, 128, 24, 0, 48, 128)
    content = small_labels(camvid_samples, 12, 32)
    output = np.full((1, 24, 32), 7, np.uint8)  # a model predicting at 1/4 resolution
    output[0, 6:18] = content
    labels, _ = Postprocessor(spec)(output, geometry)
    np.testing.assert_array_equal(labels, np.repeat(np.repeat(content, 8, axis=0), 8, axis=1))


def test_labels_fast_path_and_logits_path_agree(camvid_samples):
    model_map = small_labels(camvid_samples, 96, 128, index=3)
    model_map = np.where(model_map == 255, 0, model_map).astype(np.uint8)
    geometry = Geometry.plain_resize((360, 480), (96, 128))
    from_labels, _ = Postprocessor(make_spec(output_kind='labels'))(model_map[None], geometry)
    from_logits, scores = Postprocessor(make_spec(output_kind='logits'))(
        logits_for(model_map), geometry, confidence=True)
    np.testing.assert_array_equal(from_labels, from_logits)
    assert scores.shape == (360, 480) and scores.dtype == np.uint8
    for dtype in (np.int32, np.int64):
        wide, _ = Postprocessor(make_spec(output_kind='labels'))(
            model_map[None].astype(dtype), geometry)
        np.testing.assert_array_equal(wide, from_labels)


def test_confidence_is_the_softmax_maximum():
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 2.0, (1, 11, 8, 10)).astype(np.float32)
    geometry = Geometry.plain_resize((8, 10), (8, 10))
    labels, scores = Postprocessor(make_spec(8, 10))(logits, geometry, confidence=True)
    values = logits[0].astype(np.float64)
    softmax = np.exp(values) / np.exp(values).sum(axis=0)
    np.testing.assert_array_equal(labels, softmax.argmax(axis=0))
    np.testing.assert_allclose(scores, np.round(softmax.max(axis=0) * 255), atol=1)
    assert Postprocessor(make_spec(8, 10))(logits, geometry)[1] is None


def test_out_of_range_label_ids_become_unlabeled(caplog):
    output = np.array([[[0, 10, 11, -1, 300]]], np.int64)
    geometry = Geometry.plain_resize((1, 5), (1, 5))
    labels, _ = Postprocessor(make_spec(1, 5, output_kind='labels'))(output, geometry)
    np.testing.assert_array_equal(labels, [[0, 10, 255, 255, 255]])
    # uint8 label maps too (the fused-argmax models); the mismatch is logged once
    postprocessor = Postprocessor(make_spec(1, 5, output_kind='labels'))
    known = np.array([[[0, 10, 255, 3, 255]]], np.uint8)
    np.testing.assert_array_equal(postprocessor(known, geometry)[0], known[0])
    assert not [r for r in caplog.records if 'does not have' in r.getMessage()][1:]
    for _ in range(3):
        labels, _ = postprocessor(np.array([[[0, 10, 11, 200, 255]]], np.uint8), geometry)
        np.testing.assert_array_equal(labels, [[0, 10, 255, 255, 255]])
    warnings = [r for r in caplog.records if 'does not have' in r.getMessage()]
    assert len(warnings) == 2 and '[11, 200]' in warnings[1].getMessage()


def test_outputs_that_do_not_fit_the_spec():
    geometry = Geometry.plain_resize((96, 128), (96, 128))
    post = Postprocessor(make_spec(output_kind='logits'))
    with pytest.raises(SpecError, match=r'test-spec.yaml.*8 classes but the spec lists 11'):
        post(np.zeros((1, 8, 96, 128), np.float32), geometry)
    with pytest.raises(SpecError, match=r'test-spec.yaml.*not 1xCxHxW float logits'):
        post(np.zeros((96, 128), np.float32), geometry)
    with pytest.raises(SpecError, match=r'test-spec.yaml.*not a 1xHxW label map'):
        Postprocessor(make_spec(output_kind='labels'))(np.zeros((2, 3, 96, 128), np.uint8),
                                                       geometry)
