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
as ``torch.argmax``) cast to an N x H x W uint8 label map, or ``labels_confidence``: N x 2 x H x W
uint8, the label map and the winning class's softmax probability x 255 (rounded), so the
confidence gate of the drivable mask works on a fused model with one byte per plane.
"""

from typing import Any, List, Optional, Tuple

import numpy as np

from seg_perception.core.spec import ModelSpec


INPUT_NAME = 'input'
CORE_INPUT_NAME = 'normalized'
CORE_OUTPUT_NAME = 'logits'
LABELS_NAME = 'labels'
LABELS_CONFIDENCE_NAME = 'labels_confidence'
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


def opset_of(proto) -> int:
    """Return the default-domain opset of a model."""
    return max(entry.version for entry in proto.opset_import if entry.domain in ('', 'ai.onnx'))


def labels_confidence_nodes(graph, opset: int) -> List:
    """
    Return the nodes from ``logits`` to the fused N x 2 x H x W uint8 (labels, confidence).

    Labels: ArgMax over classes (first index on ties). Confidence: the winning class's softmax
    probability as 1 / sum(exp(logits - max)), x 255, rounded half to even (numpy's rint), cast
    to uint8 -- the postprocessor's own formula. (With Softmax + ReduceMax instead, a bundled
    model frame took 2.8x as long in ONNX Runtime on this project's CPU; this costs +9 %.)
    """
    from onnx import helper, numpy_helper, TensorProto

    def name(suffix: str) -> str:
        return f'{_PREFIX}{suffix}'

    def reduce(op: str, source: str, target: str, axes_as_input_from: int) -> Any:
        if opset >= axes_as_input_from:
            return helper.make_node(op, [source, name('class_axis')], [target], name=target,
                                    keepdims=1)
        return helper.make_node(op, [source], [target], name=target, axes=[1], keepdims=1)

    graph.initializer.append(numpy_helper.from_array(np.array(255.0, np.float32),
                                                     name('confidence_scale')))
    graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64),
                                                     name('class_axis')))
    return [
        helper.make_node('ArgMax', [CORE_OUTPUT_NAME], [name('argmax')], name=name('argmax'),
                         axis=1, keepdims=1, select_last_index=0),
        helper.make_node('Cast', [name('argmax')], [name('labels_plane')],
                         name=name('labels_plane'), to=TensorProto.UINT8),
        reduce('ReduceMax', CORE_OUTPUT_NAME, name('best_logit'), 18),
        helper.make_node('Sub', [CORE_OUTPUT_NAME, name('best_logit')], [name('shifted')],
                         name=name('shifted')),
        helper.make_node('Exp', [name('shifted')], [name('exp')], name=name('exp')),
        reduce('ReduceSum', name('exp'), name('total'), 13),
        helper.make_node('Div', [name('confidence_scale'), name('total')], [name('scaled')],
                         name=name('scaled')),
        helper.make_node('Round', [name('scaled')], [name('rounded')], name=name('rounded')),
        helper.make_node('Cast', [name('rounded')], [name('confidence_plane')],
                         name=name('confidence_plane'), to=TensorProto.UINT8),
        helper.make_node('Concat', [name('labels_plane'), name('confidence_plane')],
                         [LABELS_CONFIDENCE_NAME], name=name('labels_confidence'), axis=1),
    ]


def wrap_graph(core, spec: ModelSpec, dynamic: bool = False,
               output_hw: Optional[Tuple[int, int]] = None):
    """
    Return ``core`` (modified in place) with the spec's input and output adapters.

    ``output_hw`` is the size the core predicts at when it is not the input size.
    """
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

    batch = 'batch' if dynamic else 1
    height, width = output_hw or (spec.input_height, spec.input_width)
    if spec.output_kind == 'labels':
        argmax = f'{_PREFIX}argmax'
        post_nodes.append(helper.make_node('ArgMax', [CORE_OUTPUT_NAME], [argmax], name=argmax,
                                           axis=1, keepdims=0, select_last_index=0))
        post_nodes.append(helper.make_node('Cast', [argmax], [LABELS_NAME],
                                           name=f'{_PREFIX}labels_uint8', to=TensorProto.UINT8))
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info(
            LABELS_NAME, TensorProto.UINT8, [batch, height, width]))
    elif spec.output_kind == 'labels_confidence':
        post_nodes += labels_confidence_nodes(graph, opset_of(core))
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info(
            LABELS_CONFIDENCE_NAME, TensorProto.UINT8,
            [batch, 2, height, width]))

    nodes = pre_nodes + list(graph.node) + post_nodes
    del graph.node[:]
    graph.node.extend(nodes)
    return core
