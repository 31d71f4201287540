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
Splice the input and output adapters a ModelSpec asks for around a float core graph.

The core graph takes ``normalized`` (N x 3 x H x W float, RGB, ImageNet-normalized) and returns
``logits`` (N x C x H x W). The wrapped graph takes ``input``:

- uint8: raw pixels; ``Cast`` to float, then ``Mul`` by 1 / (255 std) and ``Sub`` mean / std
  (scaling by dtype, never by content: a dark frame is normalized like any other);
- float32: already normalized pixels;
- in ``spec.input_layout`` (``nhwc`` adds a ``Transpose``) and ``spec.channel_order`` (``bgr``
  adds a ``Gather`` that reorders the channels to RGB);

and returns ``logits`` unchanged, or ``labels``: ``ArgMax`` over classes (first index on ties,
as ``torch.argmax``) cast to an N x H x W uint8 label map.
"""

from typing import List

import numpy as np

from seg_perception.core.spec import ModelSpec


INPUT_NAME = 'input'
CORE_INPUT_NAME = 'normalized'
CORE_OUTPUT_NAME = 'logits'
LABELS_NAME = 'labels'
_PREFIX = 'seg_perception_'


def input_shape(spec: ModelSpec, dynamic: bool) -> List:
    """Return the graph input shape in the spec's layout (batch symbolic when dynamic)."""
    batch = 'batch' if dynamic else 1
    if spec.input_layout == 'nhwc':
        return [batch, spec.input_height, spec.input_width, 3]
    return [batch, 3, spec.input_height, spec.input_width]


def normalization_constants(spec: ModelSpec):
    """Return (scale, shift) so that ``uint8 * scale - shift == (x / 255 - mean) / std``."""
    std = np.asarray(spec.std, np.float64)
    mean = np.asarray(spec.mean, np.float64)
    scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(1, 3, 1, 1)
    shift = (mean / std).astype(np.float32).reshape(1, 3, 1, 1)
    return scale, shift


def wrap_graph(core, spec: ModelSpec, dynamic: bool = False):
    """Return ``core`` (modified in place) with the spec's input and output adapters."""
    from onnx import helper, numpy_helper, TensorProto

    graph = core.graph
    pre_nodes, post_nodes = [], []
    current = INPUT_NAME

    def step(op: str, **attributes) -> None:
        nonlocal current
        inputs = [current] + attributes.pop('extra_inputs', [])
        produced = f'{_PREFIX}{op.lower()}_{len(pre_nodes)}'
        pre_nodes.append(helper.make_node(op, inputs, [produced], name=produced, **attributes))
        current = produced

    if spec.input_dtype == 'uint8':
        step('Cast', to=TensorProto.FLOAT)
    if spec.input_layout == 'nhwc':
        step('Transpose', perm=[0, 3, 1, 2])
    if spec.channel_order == 'bgr':
        order = numpy_helper.from_array(np.array([2, 1, 0], np.int64), f'{_PREFIX}bgr_to_rgb')
        graph.initializer.append(order)
        step('Gather', axis=1, extra_inputs=[order.name])
    if spec.input_dtype == 'uint8':
        scale, shift = normalization_constants(spec)
        graph.initializer.append(numpy_helper.from_array(scale, f'{_PREFIX}scale'))
        graph.initializer.append(numpy_helper.from_array(shift, f'{_PREFIX}shift'))
        step('Mul', extra_inputs=[f'{_PREFIX}scale'])
        step('Sub', extra_inputs=[f'{_PREFIX}shift'])
    # the last adapter writes the core's input tensor (or the input is the core's input)
    if pre_nodes:
        pre_nodes[-1].output[0] = CORE_INPUT_NAME
    else:
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name == CORE_INPUT_NAME:
                    node.input[index] = INPUT_NAME

    elem_type = TensorProto.UINT8 if spec.input_dtype == 'uint8' else TensorProto.FLOAT
    new_input = helper.make_tensor_value_info(INPUT_NAME, elem_type, input_shape(spec, dynamic))
    kept_inputs = [i for i in graph.input if i.name != CORE_INPUT_NAME]
    del graph.input[:]
    graph.input.extend([new_input] + kept_inputs)

    if spec.output_kind == 'labels':
        argmax = f'{_PREFIX}argmax'
        post_nodes.append(helper.make_node('ArgMax', [CORE_OUTPUT_NAME], [argmax], name=argmax,
                                           axis=1, keepdims=0, select_last_index=0))
        post_nodes.append(helper.make_node('Cast', [argmax], [LABELS_NAME],
                                           name=f'{_PREFIX}labels_uint8', to=TensorProto.UINT8))
        batch = 'batch' if dynamic else 1
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info(
            LABELS_NAME, TensorProto.UINT8, [batch, spec.input_height, spec.input_width]))

    nodes = pre_nodes + list(graph.node) + post_nodes
    del graph.node[:]
    graph.node.extend(nodes)
    return core
