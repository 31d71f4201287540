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
``seg-perception export``: a zoo model to self-describing ONNX, fp32 or static INT8 QDQ.

Everything cheap is checked before the network is built: the output path, the class table, the
architecture/backbone names, the input size, the checkpoint and the calibration images. The
file is written to a temporary name and renamed, so a failure never leaves a partial model.
"""

import argparse
import json

from seg_perception.core import spec as spec_module
from seg_perception.core.errors import UsageError
from seg_perception.models.calibration import DEFAULT_CALIBRATION_IMAGES, load_calibration_images
from seg_perception.models.export import (check_output_path, DEFAULT_OPSET, export_model,
                                          OPSET_RANGE)
from seg_perception.models.quantize import (CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD,
                                            make_quantizer, QUANTIZE_CHOICES)
from seg_perception.models.zoo import (ARCHITECTURES, check_input_size, create_model,
                                       read_class_bias, resolve_backbone, with_class_bias)
from seg_perception.tools.argtypes import positive_int, within


DEFAULT_HEIGHT = 360  # CamVid frames are 480x360
DEFAULT_WIDTH = 480
# the offsets a --class-bias export added, recorded beside the spec in the model's metadata
CLASS_BIAS_KEY = 'seg_perception.class_bias'
DEFAULT_LAYOUT = 'nhwc'  # camera images are HWC: the transpose happens inside the graph


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the export options."""
    families = ', '.join(f'{name} ({"/".join(info.backbones)})'
                         for name, info in ARCHITECTURES.items())
    parser.add_argument('--arch', required=True, help=f'architecture: {families}')
    parser.add_argument('--backbone', help='backbone (default: the first listed for --arch)')
    parser.add_argument('--classes', default='camvid',
                        help='class table: a YAML path or a bundled name '
                             f'({", ".join(spec_module.available_class_tables())}); '
                             'default %(default)s')
    parser.add_argument('--weights', metavar='CKPT',
                        help='trained checkpoint (state dict; weights_only load)')
    parser.add_argument('--height', type=positive_int, default=DEFAULT_HEIGHT,
                        help='input height (default %(default)s)')
    parser.add_argument('--width', type=positive_int, default=DEFAULT_WIDTH,
                        help='input width (default %(default)s)')
    parser.add_argument('--out', required=True, metavar='MODEL.onnx', help='output file')
    parser.add_argument('--output', choices=spec_module.OUTPUT_KINDS, default='labels',
                        help='labels: argmax fused, uint8 label map; logits: C float planes '
                             '(default %(default)s)')
    parser.add_argument('--input', choices=spec_module.INPUT_DTYPES, default='uint8',
                        help='uint8: raw pixels, normalization fused; float32: normalized '
                             'input (default %(default)s)')
    parser.add_argument('--layout', choices=spec_module.INPUT_LAYOUTS, default=DEFAULT_LAYOUT,
                        help='input layout (default %(default)s)')
    parser.add_argument('--channel-order', choices=spec_module.CHANNEL_ORDERS, default='rgb',
                        help='input channel order (default %(default)s)')
    parser.add_argument('--resize-mode', choices=spec_module.RESIZE_MODES, default='resize',
                        help='how the runtime fits camera frames to the input size '
                             '(default %(default)s)')
    parser.add_argument('--opset', type=within(*OPSET_RANGE, kind=int), default=DEFAULT_OPSET,
                        help='ONNX opset (default %(default)s; graphs only the dynamo exporter '
                             'can express get at least 18)')
    parser.add_argument('--dynamic', action='store_true', help='dynamic batch dimension')
    parser.add_argument('--half', action='store_true',
                        help='fp16 weights and compute (input and outputs unchanged): the fp16 '
                             'model TensorRT 11 needs, as it has no FP16 builder flag')
    parser.add_argument('--quantize', choices=QUANTIZE_CHOICES,
                        help='static QDQ per-channel quantization (needs --calib)')
    parser.add_argument('--calib', metavar='DIR_OR_BAG',
                        help='calibration images: an image folder or a bag (file or folder)')
    parser.add_argument('--calib-count', type=positive_int, default=DEFAULT_CALIBRATION_IMAGES,
                        help='calibration images used, spread evenly (default %(default)s)')
    parser.add_argument('--calib-topic', help='image topic of a --calib bag with several')
    parser.add_argument('--calib-method', choices=CALIBRATION_METHODS,
                        default=DEFAULT_CALIBRATION_METHOD,
                        help='activation range calibration (default %(default)s)')
    parser.add_argument('--class-bias', metavar='FILE.yaml',
                        help='logit offsets added before the argmax (YAML: class name -> '
                             'offset; unnamed classes 0), e.g. to take back part of the '
                             'class weighting of training (see models/README.md)')
    parser.add_argument('--output-downsample', type=positive_int, default=1, metavar='N',
                        help='predict labels (and confidence or logits) at 1/N of the input '
                             'size (default 1: full size); the node resizes them to the camera '
                             'size (nearest). 2 cut the time of the bundled model by a quarter '
                             'for 0.06 mIoU on unseen frames (models/README.md)')
    parser.add_argument('--no-flops', action='store_true',
                        help='skip counting GFLOPs (one extra forward pass)')


def run(args: argparse.Namespace) -> int:
    """Export the model and print the one-line summary."""
    if args.quantize and not args.calib:
        raise UsageError('--quantize int8 needs --calib DIR_OR_BAG (real images to calibrate on)')
    if args.calib and not args.quantize:
        raise UsageError('--calib is only used with --quantize int8')
    if args.half and args.quantize:
        raise UsageError('--half and --quantize int8 exclude each other')

    if args.height % args.output_downsample or args.width % args.output_downsample:
        raise UsageError(f'--output-downsample {args.output_downsample} does not divide the '
                         f'input size {args.height}x{args.width}')
    check_output_path(args.out)
    table = spec_module.load_class_table(args.classes)
    arch, backbone = resolve_backbone(args.arch, args.backbone)
    check_input_size(arch, backbone, args.height, args.width)
    spec = spec_module.ModelSpec(
        classes=table.classes, input_height=args.height, input_width=args.width,
        architecture=f'{arch}-{backbone}', dataset=table.name, ignore_index=table.ignore_index,
        drivable_classes=table.drivable, channel_order=args.channel_order,
        input_dtype=args.input, input_layout=args.layout, output_kind=args.output,
        resize_mode=args.resize_mode, source=args.out)
    class_ids = {info.name: info.id for info in table.classes}
    offsets = (read_class_bias(args.class_bias, class_ids, table.num_classes)
               if args.class_bias else None)
    quantizer = None
    if args.quantize:
        images = load_calibration_images(args.calib, args.calib_count, args.calib_topic)
        quantizer = make_quantizer(images, args.calib_method)
    model = create_model(arch, backbone, num_classes=table.num_classes, weights=args.weights)
    metadata, notes = {}, []
    if offsets is not None:
        model = with_class_bias(model, offsets)
        metadata[CLASS_BIAS_KEY] = json.dumps({name: offsets[index]
                                               for name, index in class_ids.items()})
        notes.append(f'class bias from {args.class_bias}')
    print(f'seg-perception export: {arch}-{backbone} {args.height}x{args.width} -> {args.out}'
          + (f' (int8, calibrating on {args.calib})' if quantizer else ''), flush=True)
    summary = export_model(model, spec, args.out, opset=args.opset, dynamic=args.dynamic,
                           half=args.half, count_flops=not args.no_flops, quantizer=quantizer,
                           output_downsample=args.output_downsample, metadata=metadata,
                           notes=notes)
    print(summary.line())
    return 0
