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
Building TensorRT engines from exported ONNX models (the TensorRT backend's room).

Used by the TensorRT backend when it is given an ``.onnx`` (through the engine cache) and by
``seg-perception build-engine``. Precision maps to what the installed TensorRT can do: on
TensorRT 10 ``fp16``/``int8`` set the builder flags (``int8`` only for a QDQ model from
``export --quantize int8``: explicit quantization, no calibrator); TensorRT 11 builds strongly
typed networks only, so an INT8 QDQ model builds INT8 by itself and ``fp16`` needs an fp16 ONNX.
"""

from dataclasses import dataclass
import os
from typing import Any, Dict, List, Tuple

from seg_perception.core.errors import BackendError, ModelLoadError, one_line

TENSORRT_MAJOR = 10
DEFAULT_WORKSPACE_MIB = 2048
INSTALL_HINT = ('install TensorRT 10 or 11 for this Python (pip install '
                '"seg_perception[tensorrt]" on x86, JetPack python3-libnvinfer on Jetson); it '
                'needs an NVIDIA GPU')


@dataclass(frozen=True)
class BuildOptions:
    """How to build: precision flags, workspace, timing cache, largest dynamic batch, DLA."""

    fp16: bool = False
    int8: bool = False
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    timing_cache: str = ''
    max_batch: int = 1
    dla_core: int = -1

    @classmethod
    def for_precision(cls, precision: str, **kwargs: Any) -> 'BuildOptions':
        """Return the options of a backend precision (fp32, fp16, int8)."""
        return cls(fp16=precision == 'fp16', int8=precision == 'int8', **kwargs)


def import_tensorrt() -> Any:
    """Import TensorRT 10+ or raise BackendError naming what is missing."""
    try:
        import tensorrt
    except ImportError as error:
        raise BackendError("building an engine needs the TensorRT Python package 'tensorrt', "
                           f'which is not installed ({one_line(error)}); {INSTALL_HINT}'
                           ) from None
    major = int(str(tensorrt.__version__).split('.')[0])
    if major < TENSORRT_MAJOR:
        raise BackendError(f'building an engine needs TensorRT {TENSORRT_MAJOR} or newer, found '
                           f'{tensorrt.__version__}; {INSTALL_HINT}')
    return tensorrt


def builder_flags(version: str, fp16: bool, int8: bool) -> List[str]:
    """
    Return the BuilderFlag names that enable the requested precisions in this TensorRT.

    TensorRT 11 removed weak typing (``BuilderFlag.FP16``/``INT8``): an INT8 QDQ model builds
    INT8 by itself there, and FP16 needs a model converted to FP16 before the build.
    """
    if int(version.split('.')[0]) < 11:
        return [name for name, wanted in (('FP16', fp16), ('INT8', int8)) if wanted]
    if fp16:
        raise BackendError(f'fp16: TensorRT {version} has no FP16 builder flag (TensorRT 11 '
                           'builds strongly typed networks only); export an fp16 model '
                           '(seg-perception export --half, or NVIDIA ModelOpt: python -m '
                           'modelopt.onnx.autocast --onnx_path MODEL.onnx) and build that '
                           'without fp16, or use TensorRT 10')
    return []  # the QDQ nodes of an INT8 model set its precision


def onnx_summary(path: str) -> Tuple[Dict[str, str], List[Any], set]:
    """Return (metadata, input shape with None for symbolic dims, op types) of an ONNX file."""
    import onnx

    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf raises several types
        raise ModelLoadError(f'{path}: not a readable ONNX model ({one_line(error)})') from None
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField('dim_value') else None for d in dims]
    return metadata, shape, {node.op_type for node in proto.graph.node}


def stores_fp16(path: str) -> bool:
    """Return True for an ONNX model whose weights are fp16 (``export --half``)."""
    import onnx

    proto = onnx.load(path, load_external_data=False)
    return any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)


def check_precision_for_model(onnx_path: str, precision: str, ops: set) -> None:
    """Refuse int8 for a model without QDQ nodes (TensorRT would need a calibrator)."""
    if precision == 'int8' and 'QuantizeLinear' not in ops:
        raise ModelLoadError(f'{onnx_path}: int8 needs an INT8 QDQ model (export it with '
                             '--quantize int8 --calib DIR); this model has no QuantizeLinear')


def build_serialized_engine(trt: Any, onnx_path: str, options: BuildOptions
                            ) -> Tuple[bytes, Dict[str, Any]]:
    """Parse the ONNX model and build an engine; return it and what the build used."""
    from seg_perception.core.atomic import write_bytes

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if builder is None:
        raise BackendError(f'TensorRT {trt.__version__} could not create a builder: no usable '
                           'NVIDIA GPU or CUDA driver')
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10+
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors: List[str] = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelLoadError(f'{onnx_path}: TensorRT cannot parse the model: '
                             + one_line('; '.join(errors[:3])))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    flags = builder_flags(trt.__version__, options.fp16, options.int8)
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if options.dla_core >= 0:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache_bytes = b''
    if options.timing_cache and os.path.isfile(options.timing_cache):
        with open(options.timing_cache, 'rb') as stream:
            cache_bytes = stream.read()
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    profile = None
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        if any(d < 0 for d in shape):
            profile = profile or builder.create_optimization_profile()
            low = [1 if d < 0 else d for d in shape]
            high = [options.max_batch if d < 0 else d for d in shape]
            profile.set_shape(tensor.name, low, high, high)
    if profile is not None:
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f'{onnx_path}: TensorRT engine build failed (out of GPU memory, or '
                           'see the TensorRT log above)')
    if options.timing_cache:
        write_bytes(os.path.abspath(options.timing_cache),
                    bytes(memoryview(config.get_timing_cache().serialize())))
    ops, fp16_weights = onnx_summary(onnx_path)[2], stores_fp16(onnx_path)
    runs = 'int8' if 'QuantizeLinear' in ops else (
        'fp16' if options.fp16 or fp16_weights else 'fp32')
    return bytes(memoryview(serialized)), {
        'tensorrt_version': trt.__version__, 'builder_flags': flags, 'precision_built': runs,
        'workspace_mib': options.workspace_mib, 'max_batch': options.max_batch}
