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
Export a zoo torch model to a self-describing ONNX file.

The pipeline is the same for fp32 and INT8:

1. the torch model (normalized float NCHW RGB in, logits out) is exported with the TorchScript
   ONNX exporter (it honours opset 17, which TensorRT 8.6+ and every ONNX Runtime take, and is ten
   times faster than the dynamo exporter whose lowest opset is 18) and simplified with onnxslim;
2. optionally quantized to static QDQ INT8 (see :mod:`seg_perception.models.quantize`) while it is
   still a plain float graph, so no quantizer ever touches the normalization or the argmax;
3. the input and output adapters the :class:`ModelSpec` asks for are spliced around it
   (:mod:`seg_perception.models.graph_io`): uint8 NHWC/NCHW pixels cast, scaled by 1/255 and
   normalized with mean/std in one Mul and one Sub; argmax over classes cast to a uint8 label map;
4. the spec JSON goes into the metadata under ``METADATA_KEY`` with the producer info,
   ``onnx.checker`` runs, and the file is written to a temporary name and renamed, so an
   interrupted or failed export never leaves a partial file.
"""

import contextlib
from dataclasses import dataclass, field
import io
import os
import sys
import tempfile
import time
from typing import Callable, Dict, Optional, Sequence, Tuple
import warnings

import numpy as np

from seg_perception.core import atomic
from seg_perception.core.errors import one_line, SegPerceptionError
from seg_perception.core.spec import METADATA_KEY, ModelSpec
from seg_perception.models.graph_io import CORE_INPUT_NAME, CORE_OUTPUT_NAME, opset_of, wrap_graph


PRODUCER_NAME = 'seg_perception'
DEFAULT_OPSET = 17
# ArgMax's select_last_index (the fused labels output) needs 12; 23 is the newest tested with
# the pinned torch and ONNX Runtime
OPSET_RANGE = (12, 23)
# the dynamo exporter has no implementations below opset 18
DYNAMO_MIN_OPSET = 18


class ExportError(SegPerceptionError):
    """An export failed: unwritable output, a model that does not match its spec, bad graph."""


@dataclass
class ExportSummary:
    """What an export produced; ``line()`` is the one-line summary the CLI prints."""

    path: str
    spec: ModelSpec
    params: int
    file_bytes: int
    opset: int
    seconds: float
    gflops: Optional[float] = None
    precision: str = 'fp32'
    # INT8 only: share of identical labels between the fp32 and INT8 models on the
    # calibration images, and how many images that was measured on
    label_agreement: Optional[float] = None
    calibration_images: int = 0
    notes: list = field(default_factory=list)
    # (height, width) of the labels/logits when the model predicts below its input size
    output_hw: Optional[Tuple[int, int]] = None

    def line(self) -> str:
        """Return the one-line summary: architecture, params, GFLOPs, output, file size."""
        parts = [f'{self.spec.architecture}',
                 f'{self.params / 1e6:.2f} M params']
        if self.gflops is not None:
            parts.append(f'{self.gflops:.2f} GFLOPs')
        parts.append(f'input {self.spec.input_dtype} {self.spec.input_layout} '
                     f'{self.spec.input_height}x{self.spec.input_width}')
        output = f'output {self.spec.output_kind}'
        if self.output_hw is not None:
            output += f' at {self.output_hw[0]}x{self.output_hw[1]}'
        parts.append(output)
        parts.append(f'{self.precision} opset {self.opset}')
        if self.label_agreement is not None:
            parts.append(f'int8 vs fp32 label agreement {100 * self.label_agreement:.2f} % on '
                         f'{self.calibration_images} calibration images')
        parts += self.notes
        parts.append(f'{self.file_bytes / 1e6:.1f} MB')
        return f'{self.path}: ' + ', '.join(parts) + f' ({self.seconds:.1f} s)'


def package_version() -> str:
    """Return the installed seg_perception version ('unknown' when not installed)."""
    try:
        from importlib.metadata import version
        return version('seg_perception')
    except Exception:  # noqa: BLE001 - metadata absent in a plain source checkout
        return 'unknown'


def check_output_path(out_path: str) -> str:
    """Return the absolute output path, or raise ExportError if it cannot be written."""
    path = os.path.abspath(out_path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise ExportError(f'{out_path}: output path is a directory, give a file name')
    if not os.path.isdir(folder):
        raise ExportError(f'{out_path}: output directory {folder} does not exist')
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ExportError(f'{out_path}: output file exists and is not writable')
    try:  # a real probe: permission bits say nothing for root or read-only mounts
        handle, probe = tempfile.mkstemp(dir=folder, prefix='.seg_perception_probe_')
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ExportError(f'{out_path}: output directory {folder} is not writable '
                          f'({error.strerror})') from None
    return path


def probe_model(model, spec: ModelSpec,
                count_flops: bool = False) -> Tuple[Optional[float], int]:
    """
    Run one forward pass at the spec size; check the logits shape.

    Return GFLOPs (if asked) and the parameters of the modules the pass ran: unlike
    ``model.parameters()`` that leaves out what the graph never uses, e.g. the last ResNet
    stages that smp keeps in a PSPNet encoder of depth 3. Raises ExportError when the model's
    class count or output size does not match the spec.
    """
    import torch

    dummy = torch.zeros(1, 3, spec.input_height, spec.input_width)
    gflops = None
    ran = set()
    hooks = [module.register_forward_hook(lambda m, *_: ran.add(m)) for module in model.modules()]
    try:
        with torch.no_grad():
            if count_flops:
                from torch.utils.flop_counter import FlopCounterMode
                counter = FlopCounterMode(display=False)
                with counter:
                    logits = model(dummy)
                gflops = counter.get_total_flops() / 1e9
            else:
                logits = model(dummy)
    finally:
        for hook in hooks:
            hook.remove()
    used = int(sum(p.numel() for module in ran for p in module.parameters(recurse=False)))
    expected = (1, spec.num_classes, spec.input_height, spec.input_width)
    if tuple(logits.shape) != expected:
        raise ExportError(f'{spec.architecture}: model output shape {tuple(logits.shape)} does '
                          f'not match the spec (expected logits {expected}: '
                          f'{spec.num_classes} classes at the input size)')
    return gflops, used


def export_core(model, spec: ModelSpec, opset: int = DEFAULT_OPSET, dynamic: bool = False,
                simplify: bool = True):
    """
    Export the bare float model (normalized NCHW RGB in, logits out) to an ONNX ModelProto.

    The TorchScript exporter is tried first (fast, honours ``opset``); graphs it cannot express
    (e.g. PSPNet's adaptive pooling when the feature map is not a multiple of the bins) go
    through the dynamo exporter at ``max(opset, 18)``. The opset of the result is in the proto.
    """
    import onnx

    try:
        proto = onnx.load_from_string(_torchscript_export(model, spec, opset, dynamic))
    except Exception as first:  # noqa: BLE001 - the exporter raises many types
        try:
            proto = _dynamo_export(model, spec, max(opset, DYNAMO_MIN_OPSET), dynamic)
        except Exception as second:  # noqa: BLE001
            raise ExportError(f'{spec.architecture}: torch.onnx.export failed at opset {opset} '
                              f'(TorchScript: {one_line(first)}; dynamo: '
                              f'{one_line(second)})') from None
    if simplify:
        proto = simplify_graph(proto)
    return proto


def _torchscript_export(model, spec: ModelSpec, opset: int, dynamic: bool) -> bytes:
    import torch

    dummy = torch.zeros(1, 3, spec.input_height, spec.input_width)
    buffer = io.BytesIO()
    dynamic_axes = ({CORE_INPUT_NAME: {0: 'batch'}, CORE_OUTPUT_NAME: {0: 'batch'}}
                    if dynamic else None)
    with _quiet():
        torch.onnx.export(model, (dummy,), buffer, dynamo=False, opset_version=opset,
                          input_names=[CORE_INPUT_NAME], output_names=[CORE_OUTPUT_NAME],
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    return buffer.getvalue()


def _dynamo_export(model, spec: ModelSpec, opset: int, dynamic: bool):
    import torch

    dummy = torch.zeros(1, 3, spec.input_height, spec.input_width)
    dynamic_shapes = ({0: torch.export.Dim('batch', min=1, max=1024)},) if dynamic else None
    with _quiet():
        program = torch.onnx.export(model, (dummy,), None, dynamo=True, opset_version=opset,
                                    input_names=[CORE_INPUT_NAME],
                                    output_names=[CORE_OUTPUT_NAME],
                                    dynamic_shapes=dynamic_shapes, verbose=False,
                                    external_data=False)
    return program.model_proto


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' warnings and the graph dumps torch prints from C++ on failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter('ignore')
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


# ops that may sit between the final upsampling and the logits: a class bias, a scale
_CONSTANT_OPERAND_OPS = ('Add', 'Sub', 'Mul', 'Div')


def shorten_final_upsampling(core, spec: ModelSpec, divisor: int) -> Tuple[int, int]:
    """
    Make the core graph predict at 1/divisor of its input size; return the output (H, W).

    Most zoo networks predict at 1/4-1/8 of the input and end in one bilinear upsampling to the
    full size, after which the argmax, the softmax of the confidence and the bytes out all scale
    with the pixels. Stopping that upsampling at half the size cut the bundled model's time by a
    quarter on this project's CPU for 0.06 mIoU (models/README.md); the core resizes the labels
    to the camera size with nearest sampling, as it does for any size. The ``Resize`` that feeds
    ``logits`` (through constant Add/Sub/Mul/Div only, e.g. a class bias) gets the new size;
    a graph that does not end that way (U-Net decodes at full size) is refused.
    """
    from onnx import helper, numpy_helper, shape_inference

    full = (spec.input_height, spec.input_width)
    if divisor == 1:
        return full
    if spec.input_height % divisor or spec.input_width % divisor:
        raise ExportError(f'--output-downsample {divisor} does not divide the input size '
                          f'{full[0]}x{full[1]}')
    target = (spec.input_height // divisor, spec.input_width // divisor)
    graph = core.graph
    producer = {name: node for node in graph.node for name in node.output}
    consumers: Dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    constants = {init.name for init in graph.initializer} | {
        node.output[0] for node in graph.node if node.op_type == 'Constant'}
    refuse = (f'{spec.architecture}: --output-downsample needs logits that come from a final '
              f'upsampling (Resize)')
    tensor, node = CORE_OUTPUT_NAME, producer.get(CORE_OUTPUT_NAME)
    while node is not None and node.op_type != 'Resize':
        variable = [name for name in node.input if name not in constants]
        if node.op_type not in _CONSTANT_OPERAND_OPS or len(variable) != 1:
            raise ExportError(f'{refuse}; its logits come from {node.op_type} {node.name!r}')
        tensor = variable[0]
        if consumers.get(tensor, 0) != 1:
            raise ExportError(f'{refuse}; {tensor!r} is used elsewhere in the graph')
        node = producer.get(tensor)
    if node is None:
        raise ExportError(f'{refuse}; none was found before {tensor!r}')
    inferred = shape_inference.infer_shapes(core)
    shapes = {info.name: [d.dim_value or None for d in info.type.tensor_type.shape.dim]
              for info in list(inferred.graph.value_info) + list(inferred.graph.input)}
    source = shapes.get(node.input[0], [None] * 4)[2:]
    if None in source or len(source) != 2:
        raise ExportError(f'{refuse} from a map of known size; the size of {node.input[0]!r} '
                          f'is {source}')
    if target[0] < source[0] or target[1] < source[1]:
        raise ExportError(f'--output-downsample {divisor}: {target[0]}x{target[1]} is smaller '
                          f'than the {source[0]}x{source[1]} map {spec.architecture} predicts '
                          f'at; nothing would be saved')
    prefix = 'seg_perception_output_size'
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0], np.int64), f'{prefix}_start'),
        numpy_helper.from_array(np.array([2], np.int64), f'{prefix}_end'),
        numpy_helper.from_array(np.array(target, np.int64), f'{prefix}_hw')])
    position = list(graph.node).index(node)
    graph.node.insert(position, helper.make_node(
        'Concat', [f'{prefix}_nc', f'{prefix}_hw'], [prefix], name=prefix, axis=0))
    graph.node.insert(position, helper.make_node(
        'Slice', [f'{prefix}_shape', f'{prefix}_start', f'{prefix}_end'], [f'{prefix}_nc'],
        name=f'{prefix}_nc'))
    graph.node.insert(position, helper.make_node(
        'Shape', [node.input[0]], [f'{prefix}_shape'], name=f'{prefix}_shape'))
    del node.input[1:]
    node.input.extend(['', '', prefix])  # roi, scales unused: the size is given
    prune_dead_nodes(graph)
    for info in graph.output:
        if info.name == CORE_OUTPUT_NAME:
            dims = info.type.tensor_type.shape.dim
            for dim, value in zip(list(dims)[2:], target):
                dim.Clear()
                dim.dim_value = value
    return target


def prune_dead_nodes(graph) -> None:
    """Remove nodes none of whose outputs is used (the old size computation of a Resize)."""
    outputs = {info.name for info in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [node for node in graph.node if not any(name in used for name in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)


def simplify_graph(proto):
    """Constant-fold and clean a float graph with onnxslim (never used on QDQ graphs)."""
    import onnxslim

    return onnxslim.slim(proto)


def export_model(model, spec: ModelSpec, out_path: str, *, opset: int = DEFAULT_OPSET,
                 dynamic: bool = False, simplify: bool = True, count_flops: bool = False,
                 quantizer: Optional[Callable] = None, half: bool = False,
                 output_downsample: int = 1, metadata: Optional[Dict[str, str]] = None,
                 notes: Sequence[str] = ()) -> ExportSummary:
    """
    Export ``model`` as the graph ``spec`` describes and write it atomically to ``out_path``.

    ``model`` maps normalized float N x 3 x H x W RGB to logits. With ``spec.input_dtype ==
    'uint8'`` the graph takes raw pixels in ``spec.input_layout`` and ``spec.channel_order``
    and normalizes inside; with float32 it takes normalized input in that layout and channel
    order. With ``spec.output_kind == 'labels'`` it returns an N x H x W uint8 label map.
    ``quantizer`` (see :func:`seg_perception.models.quantize.make_quantizer`) turns the float
    core graph into INT8 QDQ and reports the label agreement with the fp32 model. ``half``
    stores and computes the core graph in fp16 (its float32 input and logits kept, so the fused
    adapters are unchanged): what TensorRT 11, which has no FP16 builder flag, builds as fp16.
    ``output_downsample`` N > 1 makes the model predict at 1/N of its input size (see
    :func:`shorten_final_upsampling`). ``metadata`` adds entries beside the spec; ``notes`` go
    into the summary line.
    """
    import onnx

    started = time.monotonic()
    path = check_output_path(out_path)
    model = model.eval()
    gflops, used = probe_model(model, spec, count_flops)
    core = export_core(model, spec, opset, dynamic, simplify)
    output_hw = shorten_final_upsampling(core, spec, output_downsample)
    summary_extra = {}
    if quantizer is not None and half:
        raise ExportError(f'{out_path}: --half and --quantize int8 exclude each other')
    if quantizer is not None:
        core, summary_extra = quantizer(core, spec)
    if half:
        core = to_float16(core)
    graph = wrap_graph(core, spec, dynamic, output_hw)
    if simplify and quantizer is None:
        graph = simplify_graph(graph)
    add_metadata(graph, spec, metadata)
    try:
        onnx.checker.check_model(graph, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f'{out_path}: exported graph fails onnx.checker '
                          f'({one_line(error)})') from None
    file_bytes = write_atomically(graph.SerializeToString(), path)
    return ExportSummary(path=out_path, spec=spec, params=used,
                         file_bytes=file_bytes, opset=opset_of(graph),
                         seconds=time.monotonic() - started, gflops=gflops,
                         precision='int8' if quantizer is not None else
                         'fp16' if half else 'fp32', notes=list(notes),
                         output_hw=None if output_downsample == 1 else output_hw,
                         **summary_extra)


def add_metadata(proto, spec: ModelSpec, extra: Optional[Dict[str, str]] = None) -> None:
    """Store the spec JSON under METADATA_KEY (and ``extra``); set the producer fields."""
    del proto.metadata_props[:]
    for key, value in [(METADATA_KEY, spec.to_json())] + sorted((extra or {}).items()):
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value
    proto.producer_name = PRODUCER_NAME
    proto.producer_version = package_version()
    proto.doc_string = spec.summary()


def to_float16(core):
    """Return the core graph with fp16 weights and compute; its float32 input/output stay."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # it warns about values clipped to the fp16 range
        return convert_float_to_float16(core, keep_io_types=True)


def write_atomically(data: bytes, path: str) -> int:
    """Write bytes atomically with the one atomic writer (core.atomic); return the size."""
    try:
        atomic.write_bytes(path, data)
    except OSError as error:
        raise ExportError(f'{path}: cannot write the model ({error.strerror or error})') from None
    return len(data)
