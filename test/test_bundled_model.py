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
The bundled default model segments real CamVid frames as well as its model card says.

The floors sit a few points under the numbers the card (models/README.md) reports for the ten
committed sample frames, so a broken export, a preprocessing mismatch (channel order, mean/std,
resize) or a wrong class table fails here.
"""

import cv2
import numpy as np
import pytest

from seg_perception.core import Segmenter
from seg_perception.core.resources import default_model_path
from seg_perception.core.metrics import BinaryStats, ConfusionMatrix

# models/README.md, "Accuracy", row "10 committed sample frames"; floors = card - 3 points
SAMPLE_MIOU_FLOOR = 79.2  # card: 82.2
SAMPLE_ROAD_IOU_FLOOR = 93.7  # card: 96.7
ROAD = 3


@pytest.fixture(scope='module')
def scores(camvid_samples):
    """Run the bundled model on every sample: (confusion matrix, drivable stats)."""
    matrix = ConfusionMatrix(11)
    drivable = BinaryStats()
    with Segmenter(None) as segmenter:
        assert segmenter.spec.class_names[ROAD] == 'Road'
        assert segmenter.spec.drivable_classes == ['Road']
        for _, rgb, labels in camvid_samples:
            result = segmenter.process(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 'bgr8')
            assert result.labels.shape == labels.shape
            matrix.update(labels, result.labels)
            drivable.update(labels == ROAD, result.drivable > 0, labels != 255)
    return matrix, drivable


def test_default_model_is_bundled_and_self_describing():
    path = default_model_path()
    assert path.endswith('.onnx')
    with Segmenter(path) as segmenter:
        spec = segmenter.spec
        assert spec.dataset == 'camvid' and spec.num_classes == 11
        assert (spec.input_height, spec.input_width) == (360, 480)
        assert spec.input_dtype == 'uint8' and spec.output_kind == 'labels_confidence'
        # it ships with the confidence fused: ~/confidence and the drivable gate work
        result = segmenter.process(np.zeros((360, 480, 3), np.uint8), confidence=True)
        assert result.confidence is not None and result.confidence.dtype == np.uint8


def test_sample_miou_above_floor(scores):
    matrix, _ = scores
    assert matrix.miou() * 100 >= SAMPLE_MIOU_FLOOR, matrix.to_dict()


def test_sample_road_iou_above_floor(scores):
    matrix, drivable = scores
    assert matrix.iou()[ROAD] * 100 >= SAMPLE_ROAD_IOU_FLOOR
    # the ego-connected drivable mask must not lose much of the road
    assert drivable.iou() * 100 >= SAMPLE_ROAD_IOU_FLOOR - 5


def test_channel_order_matters(camvid_samples):
    """Feeding RGB as BGR must score worse: the test can tell a preprocessing mismatch."""
    right, wrong = ConfusionMatrix(11), ConfusionMatrix(11)
    with Segmenter(None) as segmenter:
        for _, rgb, labels in camvid_samples[:4]:
            right.update(labels, segmenter.process(rgb, 'rgb8').labels)
            wrong.update(labels, segmenter.process(np.ascontiguousarray(rgb[..., ::-1]),
                                                   'rgb8').labels)
    assert right.miou() > wrong.miou()
