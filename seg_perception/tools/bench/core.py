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
``seg-perception bench core``: the work after inference, at camera size, without a model.

A real CamVid label map resized (nearest) to the model output size (default 512x1024, labels
output, CamVid classes) goes through exactly the code :class:`Segmenter` runs after inference
(``OutputStages``): labels back to the camera size (default 1920x1200), drivable mask, colors.
Medians over ``--repeats`` runs after ``--warmup`` runs; the target is 5 ms in total.
"""

import argparse
import json
import os
import time
from typing import Dict, List, Tuple

import cv2
import numpy as np

from seg_perception.core.preprocess import Geometry
from seg_perception.core.resources import sample_dir
from seg_perception.core.segmenter import OutputStages
from seg_perception.core.spec import load_class_table, ModelSpec


TARGET_MS = 5.0
DEFAULT_CAMERA = '1920x1200'
DEFAULT_OUTPUT = '1024x512'


def parse_size(text: str) -> Tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` into (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not WIDTHxHEIGHT') from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} must be positive')
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of the core benchmark (``--core-*`` in the deprecated spelling)."""
    parser.add_argument('--camera', type=parse_size, default=DEFAULT_CAMERA,
                        metavar='WxH', help=f'camera image size (default {DEFAULT_CAMERA})')
    parser.add_argument('--output', type=parse_size, default=DEFAULT_OUTPUT,
                        metavar='WxH', help=f'model label map size (default {DEFAULT_OUTPUT})')
    parser.add_argument('--overlay', action='store_true',
                        help='also time the alpha overlay on the camera image')


def sample_label_map(height: int, width: int):
    """Return a real CamVid label map (void -> 255) resized to height x width, nearest."""
    folder = sample_dir('labels')
    found = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if name.endswith('.png')) if folder else []
    raw = cv2.imread(found[0], cv2.IMREAD_UNCHANGED) if found else None
    if raw is not None and raw.ndim == 2:
        labels = load_class_table('camvid').label_lut()[raw]
    else:  # no (readable) samples shipped: horizontal bands of classes, road at the bottom
        labels = np.repeat(np.array([0, 1, 5, 8, 4, 3, 3], np.uint8), 8)[:, None]
        labels = np.ascontiguousarray(np.broadcast_to(labels, (labels.shape[0], 64)))
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


def measure(args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    """Time the post-inference stages; return {stage: {median, p90, min}} in ms."""
    (cam_h, cam_w), (out_h, out_w) = args.camera, args.output
    table = load_class_table('camvid')
    spec = ModelSpec(classes=table.classes, input_height=out_h, input_width=out_w,
                     architecture='bench', dataset='camvid', drivable_classes=table.drivable,
                     input_dtype='uint8', output_kind='labels', source='bench core')
    stages = OutputStages(spec)
    output = sample_label_map(out_h, out_w)[None]
    geometry = Geometry.plain_resize((cam_h, cam_w), (out_h, out_w))
    ids = spec.drivable_ids
    rgb = np.full((cam_h, cam_w, 3), 96, np.uint8) if args.overlay else None
    samples: Dict[str, List[float]] = {}
    for run in range(args.warmup + args.repeats):
        start = time.perf_counter()
        result = stages.run(output, geometry, ids, color=True, overlay_rgb=rgb)
        total = (time.perf_counter() - start) * 1e3
        if run < args.warmup:
            continue
        for stage, value in list(result.timings.items()) + [('total', total)]:
            samples.setdefault(stage, []).append(value)
    assert result.labels.shape == (cam_h, cam_w) and result.color.shape == (cam_h, cam_w, 3)
    return {stage: {'median': float(np.median(values)), 'p90': float(np.percentile(values, 90)),
                    'min': float(np.min(values))} for stage, values in samples.items()}


def run(args: argparse.Namespace) -> int:
    """Run the core benchmark, print the table, optionally write JSON."""
    results = measure(args)
    (cam_h, cam_w), (out_h, out_w) = args.camera, args.output
    print(f'core after inference: {out_w}x{out_h} labels -> {cam_w}x{cam_h} camera, '
          f'{args.repeats} runs, OpenCV {cv2.__version__} with {cv2.getNumThreads()} threads, '
          f'{os.cpu_count()} CPUs')
    print(f'{"stage":<12} {"median ms":>10} {"p90 ms":>8} {"min ms":>8}')
    for stage, values in results.items():
        print(f'{stage:<12} {values["median"]:>10.2f} {values["p90"]:>8.2f} '
              f'{values["min"]:>8.2f}')
    total = results['total']['median']
    verdict = 'within' if total <= TARGET_MS else 'OVER'
    print(f'total median {total:.2f} ms: {verdict} the {TARGET_MS:.0f} ms target')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump({'camera': [cam_h, cam_w], 'output': [out_h, out_w],
                       'repeats': args.repeats, 'target_ms': TARGET_MS, 'stages': results},
                      stream, indent=2)
    return 0
