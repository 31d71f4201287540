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
``seg-perception demo``: segment the bundled CamVid frames and write overlays and drivable masks.

By default the demo goes through the node over DDS (:mod:`seg_perception.tools.demo_node`, which
this module imports and hands the images and the model; it imports nothing from here) and then
scores the same frames offline; ``--core`` (or no rclpy) runs only the offline part.
:func:`run_core_demo` runs the ROS-free :class:`~seg_perception.core.Segmenter` on every image of
``--images`` (default: the shipped CamVid samples, found by
:func:`seg_perception.core.resources.sample_dir` in a checkout, a colcon install or an installed
wheel), writes ``<name>_overlay.png``,
``<name>_drivable.png`` and ``<name>_labels.png`` into ``--out``, and prints the mIoU, pixel
accuracy and drivable IoU against the sample labels when they exist. Without ``--model`` it uses
the bundled model; if there is none yet and torch is installed it exports an UNTRAINED LRASPP to
a temporary folder and says so loudly (the overlays are then meaningless).
"""

import argparse
import importlib.util
import os
from pathlib import Path
import sys
import tempfile
from typing import List, Optional, Tuple

import cv2
import numpy as np

from seg_perception.core import Segmenter
from seg_perception.core.backends import CHOICES
from seg_perception.core.backends.base import check_model_file
from seg_perception.core.colorize import DEFAULT_ALPHA
from seg_perception.core.errors import DataError, ModelLoadError, SpecError
from seg_perception.core.metrics import BinaryStats, ConfusionMatrix
from seg_perception.core.resources import default_model_path, sample_dir, SAMPLES_DIR, search_dirs
from seg_perception.core.spec import load_class_table, ModelSpec
from seg_perception.io.images import list_images
from seg_perception.tools.argtypes import unit_interval
from seg_perception.tools.demo_node import run_node_demo


UNTRAINED_SIZE = (360, 480)  # CamVid frames, so nothing is resized


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the demo options."""
    parser.add_argument('--out', default=os.path.join('out', 'demo'), metavar='DIR',
                        help='output folder (created; default out/demo)')
    parser.add_argument('--model', default='', metavar='M',
                        help='model file (default: the bundled models/camvid_*.onnx)')
    parser.add_argument('--images', default=sample_dir('images') or '', metavar='DIR',
                        help='folder of PNG/JPEG images (default: the shipped CamVid samples)')
    parser.add_argument('--labels', default='', metavar='DIR',
                        help='ground-truth label PNGs with the same names (default: ../labels '
                             'next to --images, when it exists)')
    parser.add_argument('--backend', default='auto', choices=CHOICES, help='inference backend')
    parser.add_argument('--alpha', type=unit_interval, default=DEFAULT_ALPHA,
                        help=f'overlay opacity in [0, 1] (default {DEFAULT_ALPHA})')
    parser.add_argument('--core', action='store_true',
                        help='run the core offline instead of the node over DDS (the default '
                             'when rclpy is not importable)')


def run(args: argparse.Namespace) -> int:
    """Run the node demo over DDS (default) or the core demo (``--core`` or no rclpy)."""
    images = find_images(args.images)
    gt_folder = label_folder(args.images, args.labels)  # a bad --labels fails before any work
    over_dds = not args.core and importlib.util.find_spec('rclpy') is not None
    with tempfile.TemporaryDirectory(prefix='seg_demo_') as scratch:
        model, untrained = resolve_model(args.model, scratch)
        if not over_dds:
            return run_core_demo(args, images, model, untrained)

        # a wrong path fails here in one line, not after the node process started
        check_model_file(model, 'ONNX model' if model.lower().endswith('.onnx') else 'model')
        status = run_node_demo(args, images, model, untrained)
        if status == 0 and gt_folder:
            offline = argparse.Namespace(**{**vars(args), 'out': os.path.join(args.out, 'core')})
            print(f'offline check of the same frames with the core (no DDS) into {offline.out}:')
            return run_core_demo(offline, images, model, untrained)
        return status


def find_images(folder: str) -> List[Path]:
    """Return the sorted image files of ``--images``, or raise DataError naming the folder."""
    if not folder:  # the default, and no samples shipped where resources looks
        looked = ', '.join(search_dirs(os.path.join(SAMPLES_DIR, 'images')))
        raise DataError(f'no sample images in {looked} (pass --images DIR)')
    try:
        return list_images(folder, 'image')
    except DataError as error:
        raise DataError(f'{error} (pass --images DIR)') from None


def untrained_model(folder: str) -> str:
    """Export a randomly initialised LRASPP with the CamVid classes; return its path."""
    from seg_perception.models.export import export_model
    from seg_perception.models.zoo import create_model

    table = load_class_table('camvid')
    height, width = UNTRAINED_SIZE
    spec = ModelSpec(classes=table.classes, input_height=height, input_width=width,
                     architecture='lraspp', dataset='camvid', drivable_classes=table.drivable,
                     input_dtype='uint8', output_kind='labels')
    path = os.path.join(folder, 'untrained_lraspp.onnx')
    export_model(create_model('lraspp', num_classes=len(table.classes)).eval(), spec, path)
    return path


def resolve_model(model: str, scratch: str) -> Tuple[str, bool]:
    """Return (model path, untrained?): the given model, the bundled one, or an untrained one."""
    if model:
        return model, False
    try:
        return default_model_path(), False
    except ModelLoadError as error:
        if importlib.util.find_spec('torch') is None:
            raise ModelLoadError(f'{error}; and torch is not installed to export an untrained '
                                 'stand-in (pass --model M)') from None
        banner = '!' * 79
        print(f'{banner}\n!! WARNING: {error}.\n!! Exporting an UNTRAINED LRASPP so the demo '
              f'can run: its labels are NOISE.\n!! Train or pass --model M for real results.\n'
              f'{banner}', file=sys.stderr)
        return untrained_model(scratch), True


def label_folder(images: str, labels: str) -> Optional[str]:
    """Return the ground-truth folder: ``labels`` if given, else ../labels next to the images."""
    if labels:
        if not os.path.isdir(labels):
            raise DataError(f'--labels {labels}: not a folder')
        return labels
    guess = os.path.join(os.path.dirname(os.path.abspath(images)), 'labels')
    return guess if os.path.isdir(guess) else None


def run_core_demo(args: argparse.Namespace, images: List[Path], model: str,
                  untrained: bool = False) -> int:
    """Segment every image with the core Segmenter; write PNGs and print a summary."""
    gt_folder = label_folder(args.images, args.labels)
    os.makedirs(args.out, exist_ok=True)
    with Segmenter(model, backend=args.backend) as segmenter:
        spec = segmenter.spec
        info = segmenter.describe()
        print(f'demo: {len(images)} images from {args.images}\n'
              f'model: {model}{" (UNTRAINED)" if untrained else ""}\n'
              f'runs on: {info["backend"]} {info["provider"]} {info["precision"]}; '
              f'{info["spec"]}')
        try:  # dataset label values -> class ids (CamVid void 11 -> 255)
            lut = load_class_table(spec.dataset).label_lut() if spec.dataset else None
        except SpecError:  # not a bundled class table: take label values as they are
            lut = None
        confusion = ConfusionMatrix(spec.num_classes, spec.ignore_index)
        drivable = BinaryStats()
        drivable_ids = spec.class_ids(segmenter.drivable_classes)
        infer_ms = []
        scored = 0
        for path in images:
            name = os.path.splitext(os.path.basename(path))[0]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DataError(f'{path}: not a readable image')
            result = segmenter.process(bgr, 'bgr8', overlay=True, overlay_alpha=args.alpha)
            infer_ms.append(result.timings['infer'])
            cv2.imwrite(os.path.join(args.out, f'{name}_overlay.png'),
                        cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR))
            cv2.imwrite(os.path.join(args.out, f'{name}_drivable.png'), result.drivable)
            cv2.imwrite(os.path.join(args.out, f'{name}_labels.png'), result.labels)
            line = (f'  {name}: {result.timings["total"]:.1f} ms '
                    f'(infer {result.timings["infer"]:.1f})')
            gt_path = os.path.join(gt_folder, os.path.basename(path)) if gt_folder else ''
            if gt_path and os.path.exists(gt_path):
                gt = cv2.imread(gt_path, cv2.IMREAD_UNCHANGED)
                if gt is None or gt.shape != result.labels.shape:
                    raise DataError(f'{gt_path}: label map unreadable or of shape '
                                    f'{None if gt is None else gt.shape}, image is '
                                    f'{result.labels.shape}')
                gt = lut[gt] if lut is not None else gt
                frame = ConfusionMatrix(spec.num_classes, spec.ignore_index)
                frame.update(gt, result.labels)
                confusion.merge(frame)
                valid = gt != spec.ignore_index
                drivable.update(np.isin(gt, drivable_ids), result.drivable > 0, valid)
                scored += 1
                line += f', mIoU {frame.miou():.3f}'
            print(line)
    print(f'wrote {3 * len(images)} PNGs (overlay, drivable, labels) to {args.out}')
    if args.labels and not scored:
        raise DataError(f'--labels {args.labels}: no label file has the name of an image in '
                        f'{args.images}')
    if scored:
        print(f'{scored} frames with labels: mIoU {confusion.miou():.3f}, pixel accuracy '
              f'{confusion.pixel_accuracy():.3f}, drivable IoU {drivable.iou():.3f} '
              f'({"+".join(segmenter.drivable_classes) or "none"}); median inference '
              f'{float(np.median(infer_ms)):.1f} ms')
    if untrained:
        print('WARNING: these results come from an UNTRAINED model.', file=sys.stderr)
    return 0
