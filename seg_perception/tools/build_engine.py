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
``seg-perception build-engine``: a TensorRT 10 engine from an exported ONNX model.

Uses the ``tensorrt`` Python API (the ``tensorrt`` extra, or JetPack's ``python3-libnvinfer``):
ONNX parser, ``--fp16`` / ``--int8`` builder flags (``--int8`` takes an INT8 QDQ model from
``seg-perception export --quantize int8``: explicit quantization, no TensorRT calibrator; on
TensorRT 11, which has no precision flags, the QDQ model builds INT8 by itself and ``--fp16``
is refused with what to do instead), a
workspace limit, a timing cache reused across builds, and an optimization profile when the
batch is dynamic. The model's spec goes to the sidecar ``<engine>.yaml`` that the TensorRT
backend reads. Inputs are checked before TensorRT is imported; engine and sidecar are written to
temporary names and renamed.
"""

import argparse
import os
import time
from typing import List

import yaml

from seg_perception.core.backends.base import check_model_file
from seg_perception.core.errors import BackendError, DataError, ModelLoadError, one_line
from seg_perception.core.spec import load_spec, named_sidecar_path
from seg_perception.models.export import check_output_path, write_atomically
from seg_perception.tools.argtypes import positive_int


TENSORRT_MAJOR = 10
DEFAULT_WORKSPACE_MIB = 2048
INSTALL_HINT = ('install TensorRT 10 for this Python (pip install "seg_perception[tensorrt]" '
                'on x86, JetPack python3-libnvinfer on Jetson); it needs an NVIDIA GPU')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the build-engine options."""
    parser.add_argument('onnx', metavar='MODEL.onnx', help='model exported by seg-perception '
                                                           'export')
    parser.add_argument('--out', metavar='ENGINE',
                        help='engine file (default: MODEL.engine next to the ONNX)')
    parser.add_argument('--fp16', action='store_true', help='allow FP16 kernels')
    parser.add_argument('--int8', action='store_true',
                        help='allow INT8 kernels (needs an INT8 QDQ model)')
    parser.add_argument('--workspace', type=positive_int, default=DEFAULT_WORKSPACE_MIB,
                        metavar='MiB',
                        help='builder workspace limit (default %(default)s MiB)')
    parser.add_argument('--timing-cache', metavar='FILE',
                        help='timing cache: read if present, written after the build')
    parser.add_argument('--batch', type=positive_int, default=1,
                        help='largest batch of the optimization profile when the model has '
                             'a dynamic batch (default %(default)s)')


def read_model_info(path: str):
    """Return (spec, op types, input names) of an ONNX model; errors name the file."""
    import onnx

    check_model_file(path, 'ONNX model')
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf raises several types
        raise ModelLoadError(f'{path}: not a readable ONNX model ({type(error).__name__})'
                             ) from None
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    spec = load_spec(path, metadata)
    ops = {node.op_type for node in proto.graph.node}
    return spec, ops, [i.name for i in proto.graph.input]


def import_tensorrt():
    """Import TensorRT 10 or raise BackendError naming what is missing."""
    try:
        import tensorrt
    except ImportError as error:
        raise BackendError("build-engine needs the TensorRT Python package 'tensorrt', "
                           f'which is not installed ({error}); {INSTALL_HINT}') from None
    major = int(str(tensorrt.__version__).split('.')[0])
    if major < TENSORRT_MAJOR:
        raise BackendError(f'build-engine needs TensorRT {TENSORRT_MAJOR} or newer, found '
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
        raise BackendError(f'--fp16: TensorRT {version} has no FP16 builder flag (TensorRT 11 '
                           'builds strongly typed networks only); convert the ONNX model to FP16 '
                           'first (NVIDIA ModelOpt: python -m modelopt.onnx.autocast '
                           '--onnx_path MODEL.onnx) and build that without --fp16, or use '
                           'TensorRT 10')
    return []  # the QDQ nodes of an INT8 model set its precision


def build_serialized_engine(trt, onnx_path: str, args: argparse.Namespace) -> bytes:
    """Parse the ONNX model and build a serialized engine with the requested flags."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if builder is None:
        raise BackendError(f'TensorRT {trt.__version__} could not create a builder: no usable '
                           'NVIDIA GPU or CUDA driver')
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors: List[str] = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelLoadError(f'{onnx_path}: TensorRT cannot parse the model: '
                             + one_line('; '.join(errors[:3])))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, args.workspace << 20)
    for flag in builder_flags(trt.__version__, args.fp16, args.int8):
        config.set_flag(getattr(trt.BuilderFlag, flag))
    cache_bytes = b''
    if args.timing_cache and os.path.isfile(args.timing_cache):
        with open(args.timing_cache, 'rb') as stream:
            cache_bytes = stream.read()
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    profile = None
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        if any(d < 0 for d in shape):
            profile = profile or builder.create_optimization_profile()
            low = [1 if d < 0 else d for d in shape]
            high = [args.batch if d < 0 else d for d in shape]
            profile.set_shape(tensor.name, low, high, high)
    if profile is not None:
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f'{onnx_path}: TensorRT engine build failed (see the TensorRT log '
                           'above)')
    if args.timing_cache:
        write_atomically(bytes(memoryview(config.get_timing_cache().serialize())),
                         os.path.abspath(args.timing_cache))
    return bytes(memoryview(serialized))


def run(args: argparse.Namespace) -> int:
    """Build the engine, write it and its spec sidecar, and print a summary line."""
    spec, ops, _ = read_model_info(args.onnx)
    if args.int8 and 'QuantizeLinear' not in ops:
        raise ModelLoadError(f'{args.onnx}: --int8 needs an INT8 QDQ model (export it with '
                             '--quantize int8 --calib DIR); this model has no QuantizeLinear')
    out = args.out or os.path.splitext(args.onnx)[0] + '.engine'
    engine_path = check_output_path(out)
    if os.path.abspath(engine_path) == os.path.abspath(args.onnx):
        raise DataError(f'--out {out}: is the input model; choose another engine file')
    if args.timing_cache:
        folder = os.path.dirname(os.path.abspath(args.timing_cache))
        if not os.path.isdir(folder):
            raise DataError(f'--timing-cache {args.timing_cache}: folder {folder} does not exist')
    trt = import_tensorrt()
    started = time.monotonic()
    engine = build_serialized_engine(trt, args.onnx, args)
    size = write_atomically(engine, engine_path)
    sidecar = named_sidecar_path(engine_path)
    write_atomically(yaml.safe_dump(spec.to_dict(), sort_keys=False).encode(), sidecar)
    flags = '+'.join(f for f, on in (('fp16', args.fp16), ('int8', args.int8)) if on) or 'fp32'
    print(f'{out}: TensorRT {trt.__version__} engine, {flags}, {spec.summary()}, '
          f'{size / 1e6:.1f} MB, spec in {sidecar} ({time.monotonic() - started:.1f} s)')
    return 0
