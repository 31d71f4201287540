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

"""Shared test fixtures: ROS environment, CamVid samples, ONNX models exported at test time."""

import glob
import os

import cv2
import numpy as np
import pytest

# DDS discovery never leaves this machine; each run gets its own domain.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, 'data', 'samples', 'camvid')
SHARED_CAMVID = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'camvid')


def load_samples():
    """Return [(name, rgb HxWx3 uint8, labels HxW uint8 with void mapped to 255)]."""
    samples = []
    for path in sorted(glob.glob(os.path.join(SAMPLES, 'images', '*.png'))):
        name = os.path.basename(path)
        rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        labels = cv2.imread(os.path.join(SAMPLES, 'labels', name), cv2.IMREAD_UNCHANGED)
        labels = np.where(labels == 11, 255, labels).astype(np.uint8)
        samples.append((name, rgb, labels))
    return samples


@pytest.fixture(scope='session')
def camvid_samples():
    """Real CamVid frames committed under data/samples/camvid."""
    samples = load_samples()
    assert samples, f'no sample frames under {SAMPLES}'
    return samples


def export_test_model(out_path, arch='lraspp', backbone=None, height=96, width=128,
                      output_kind='labels', input_dtype='uint8', seed=0, num_classes=None,
                      dynamic=False):
    """Export a randomly initialised zoo model with the CamVid class table; return the path."""
    import torch

    from seg_perception.core.spec import load_class_table, ModelSpec
    from seg_perception.models.export import export_model
    from seg_perception.models.zoo import create_model

    table = load_class_table('camvid')
    classes = table.classes if num_classes is None else [
        c for c in table.classes if c.id < num_classes]
    torch.manual_seed(seed)
    model = create_model(arch, backbone, num_classes=len(classes)).eval()
    spec = ModelSpec(classes=classes, input_height=height, input_width=width,
                     architecture=f'{arch}', dataset='camvid',
                     drivable_classes=[c for c in table.drivable
                                       if c in [k.name for k in classes]],
                     input_dtype=input_dtype, output_kind=output_kind)
    export_model(model, spec, str(out_path), dynamic=dynamic)
    return str(out_path)


@pytest.fixture(scope='session')
def labels_model(tmp_path_factory):
    """Export a small LRASPP with fused uint8 input and argmax (labels output)."""
    return export_test_model(tmp_path_factory.mktemp('models') / 'lraspp_labels.onnx')


@pytest.fixture(scope='session')
def logits_model(tmp_path_factory):
    """Export a small LRASPP with float input and logits output."""
    return export_test_model(tmp_path_factory.mktemp('models') / 'lraspp_logits.onnx',
                             output_kind='logits', input_dtype='float32')
