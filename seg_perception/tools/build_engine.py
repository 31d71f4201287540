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

import yaml

from seg_perception.core.backends.base import check_model_file
from seg_perception.core.backends.tensorrt_build import (build_serialized_engine, BuildOptions,
                                                         DEFAULT_WORKSPACE_MIB, import_tensorrt)
from seg_perception.core.errors import DataError, ModelLoadError
from seg_perception.core.spec import load_spec, named_sidecar_path
from seg_perception.models.export import check_output_path, write_atomically
from seg_perception.tools.argtypes import positive_int


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
    options = BuildOptions(fp16=args.fp16, int8=args.int8, workspace_mib=args.workspace,
                           timing_cache=args.timing_cache or '', max_batch=args.batch)
    engine, _ = build_serialized_engine(trt, args.onnx, options)
    size = write_atomically(engine, engine_path)
    sidecar = named_sidecar_path(engine_path)
    write_atomically(yaml.safe_dump(spec.to_dict(), sort_keys=False).encode(), sidecar)
    flags = '+'.join(f for f, on in (('fp16', args.fp16), ('int8', args.int8)) if on) or 'fp32'
    print(f'{out}: TensorRT {trt.__version__} engine, {flags}, {spec.summary()}, '
          f'{size / 1e6:.1f} MB, spec in {sidecar} ({time.monotonic() - started:.1f} s)')
    return 0
