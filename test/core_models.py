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
A deterministic test model: every pixel gets the class whose palette color is nearest.

Untrained zoo networks predict one class everywhere, which makes channel-order and geometry
tests pass vacuously. This 1x1 convolution has fixed weights, so its labels vary over a real
frame exactly as a numpy reference predicts, and swapping R and B changes them.
"""

import cv2
import numpy as np

from seg_perception.core.spec import load_class_table, ModelSpec


def palette_spec(height=96, width=128, **fields):
    """Return a CamVid spec for the nearest-color model."""
    table = load_class_table('camvid')
    fields.setdefault('drivable_classes', table.drivable)
    return ModelSpec(classes=table.classes, input_height=height, input_width=width,
                     architecture='nearest_color', dataset='camvid', **fields)


def color_weights(spec):
    """Return (W, b) with logits = W @ rgb01 + b ranking classes by nearness of their color."""
    colors = np.array([c.color for c in sorted(spec.classes, key=lambda c: c.id)]) / 255.0
    # -|p - c|^2 = -|p|^2 + 2 p.c - |c|^2; the first term is the same for every class
    return 2.0 * colors, -(colors ** 2).sum(axis=1)


def nearest_color_model(spec):
    """Return a torch module: normalized float NCHW RGB -> nearest-palette-color logits."""
    import torch

    weights, bias = color_weights(spec)
    mean, std = np.array(spec.mean), np.array(spec.std)
    # undo the normalization inside the convolution: rgb01 = x * std + mean
    conv = torch.nn.Conv2d(3, len(bias), 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights * std, dtype=torch.float32)[:, :, None, None])
        conv.bias.copy_(torch.tensor(bias + weights @ mean, dtype=torch.float32))
    return conv.eval()


def export_nearest_color_model(path, **fields):
    """Export the nearest-color model with the spec fields given; return the path."""
    from seg_perception.models.export import export_model
    spec = palette_spec(**fields)
    export_model(nearest_color_model(spec), spec, str(path))
    return str(path)


def reference_labels(rgb, spec, content_hw=None):
    """
    Return the labels the nearest-color model must give, computed with numpy.

    ``content_hw`` is the size the image is resized to inside the model input (the letterbox
    content box); by default the whole input.
    """
    height, width = content_hw or (spec.input_height, spec.input_width)
    small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR) / 255.0
    weights, bias = color_weights(spec)
    labels = (small @ weights.T + bias).argmax(axis=2).astype(np.uint8)
    return cv2.resize(labels, (rgb.shape[1], rgb.shape[0]),
                      interpolation=cv2.INTER_NEAREST_EXACT)
