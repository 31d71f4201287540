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
``seg-perception bench models``: torch eager vs ONNX Runtime fp32 vs ONNX Runtime INT8.

For each architecture (``lraspp``, or ``deeplabv3plus:resnet50`` with a backbone) the model is
built (random weights, or ``--weights``), exported to the default deployment graph (uint8
NHWC pixels in, uint8 labels out) in fp32 and in static QDQ INT8 calibrated on real frames, and
the three are timed on the same uint8 frame, image to labels:

- torch eager: normalize (/255, mean/std) + model + argmax, ``torch.inference_mode``;
- ONNX Runtime fp32 and INT8: one ``run`` of the exported graph (normalize and argmax fused).

Medians over ``--repeats`` after ``--warmup`` runs, all on ``--threads`` threads. The INT8 label
agreement with fp32 is measured on the calibration frames (``--calib``), and the mIoU of both on
labelled frames (``--eval IMAGES LABELS``, default the CamVid samples) at the model input size.
An ``.onnx`` path is timed with ONNX Runtime only: the model-only ``run`` and the whole
``Segmenter.process`` of a CamVid sample frame resized to ``--size`` (bgr8 in; labels and the
drivable mask out at that size), the frame rate issue 13's target is stated in. The deprecated
spelling prefixed the options with ``--bench-`` (``bench --model A --bench-threads 2``).
"""

import argparse
import json
import os
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from seg_perception.core.backends.base import check_model_file
from seg_perception.core.errors import DataError, ModelLoadError, SegPerceptionError, SpecError
from seg_perception.core.metrics import ConfusionMatrix
from seg_perception.core.resources import sample_dir
from seg_perception.core.spec import load_class_table, load_spec, ModelSpec
from seg_perception.io.images import evenly_spaced, list_images
from seg_perception.tools.argtypes import positive_int
from seg_perception.tools.bench.core import parse_size


DEFAULT_SIZE = '480x360'  # CamVid; rounded per architecture to the nearest valid size
DEFAULT_THREADS = 2
DEFAULT_CALIB_COUNT = 8
DEFAULT_EVAL_COUNT = 101  # all of CamVid val


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of the model benchmark (``--bench-*`` in the deprecated spelling)."""
    parser.add_argument('models', nargs='+', metavar='MODEL',
                        help='arch names (e.g. lraspp pspnet, or deeplabv3plus:resnet50) or '
                             '.onnx files: torch eager vs ONNX Runtime fp32 vs int8')
    parser.add_argument('--size', type=parse_size, default=DEFAULT_SIZE, metavar='WxH',
                        help=f'input size (default {DEFAULT_SIZE}, rounded per architecture '
                             'to the nearest size it takes)')
    parser.add_argument('--threads', type=positive_int, default=DEFAULT_THREADS,
                        help='intra-op threads for torch and ONNX Runtime (default '
                             '%(default)s)')
    parser.add_argument('--calib', default=sample_dir('images'), metavar='DIR_OR_BAG',
                        help='INT8 calibration images (default: the CamVid samples)')
    parser.add_argument('--calib-count', type=positive_int, default=DEFAULT_CALIB_COUNT,
                        help='calibration images (default %(default)s)')
    parser.add_argument('--eval', nargs=2, metavar=('IMAGES', 'LABELS'),
                        help='labelled frames for fp32 and INT8 mIoU: an image folder and a '
                             'folder of label maps with the same names (dataset ids, e.g. '
                             'CamVid 11 = void); default: the CamVid samples')
    parser.add_argument('--eval-count', type=positive_int, default=DEFAULT_EVAL_COUNT,
                        help='evaluation frames, spread evenly (default %(default)s)')
    parser.add_argument('--weights', metavar='CKPT',
                        help='trained checkpoint (only with a single architecture)')
    parser.add_argument('--classes', default='camvid', help='class table (default '
                                                            '%(default)s)')
    parser.add_argument('--rounds', type=positive_int, default=1,
                        help='.onnx files take turns in this many rounds of repeats/rounds '
                             'runs each, so that a drifting host slows them alike (default '
                             '%(default)s: one after the other)')


def median_ms(function: Callable[[], object], warmup: int, repeats: int) -> float:
    """Return the median wall time of ``function`` in milliseconds."""
    for _ in range(warmup):
        function()
    return float(np.median(wall_times_ms(function, max(1, repeats))))


def wall_times_ms(function: Callable[[], object], repeats: int) -> List[float]:
    """Return the wall time of each of ``repeats`` calls of ``function``, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def ort_session(path: str, threads: int):
    """Open a model with ONNX Runtime on the CPU with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    check_model_file(path)
    try:
        return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f'{path}: ONNX Runtime cannot load it ({first})') from None


def zero_feed(session) -> Dict[str, object]:
    """Return an all-zero input for a session (symbolic dimensions become 1)."""
    feeds = {}
    for graph_input in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in graph_input.shape]
        dtype = np.uint8 if graph_input.type == 'tensor(uint8)' else np.float32
        feeds[graph_input.name] = np.zeros(shape, dtype)
    return feeds


def parse_model_name(name: str) -> Tuple[str, Optional[str]]:
    """Split ``arch`` or ``arch:backbone``."""
    arch, _, backbone = name.partition(':')
    return arch, backbone or None


def load_labelled(images_dir: str, labels_dir: str, count: int, classes):
    """Return (images, labels) spread evenly over a folder; labels mapped to training ids."""
    from seg_perception.models.calibration import load_calibration_images

    images = load_calibration_images(images_dir, count)  # the same evenly spaced files
    names = [path.name for path in list_images(images_dir, 'evaluation images')]
    lut = classes.label_lut()
    labels = []
    for index in evenly_spaced(len(names), count):
        path = os.path.join(labels_dir, names[index])
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if label is None or label.ndim != 2:
            raise SegPerceptionError(f'{path}: label map missing, unreadable or not single '
                                     'channel')
        labels.append(lut[label])
    return images, labels


def bench_architecture(name: str, args: argparse.Namespace, calibration,
                       evaluation, folder: str) -> Dict[str, object]:
    """Export one architecture in fp32 and INT8 and time torch, ORT fp32 and ORT INT8."""
    import torch

    from seg_perception.models.export import export_model
    from seg_perception.models.quantize import make_quantizer
    from seg_perception.models.zoo import create_model, nearest_valid_size, resolve_backbone

    arch, backbone = resolve_backbone(*parse_model_name(name))
    height, width = nearest_valid_size(arch, backbone, *args.size)
    table = load_class_table(args.classes)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = create_model(arch, backbone, table.num_classes, weights=args.weights).eval()
    spec = ModelSpec(classes=table.classes, input_height=height, input_width=width,
                     architecture=f'{arch}-{backbone}', dataset=table.name,
                     drivable_classes=table.drivable, input_dtype='uint8',
                     input_layout='nhwc', output_kind='labels')
    fp32_path = os.path.join(folder, f'{arch}-{backbone}-fp32.onnx')
    int8_path = os.path.join(folder, f'{arch}-{backbone}-int8.onnx')
    export_model(model, spec, fp32_path)
    int8 = export_model(model, spec, int8_path, quantizer=make_quantizer(calibration))

    frame = cv2.resize(calibration[0], (width, height), interpolation=cv2.INTER_LINEAR)[None]
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    pixels = torch.from_numpy(frame)

    def torch_eager():
        with torch.inference_mode():
            x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
            return model(x).argmax(1).to(torch.uint8)

    sessions = {'fp32': ort_session(fp32_path, args.threads),
                'int8': ort_session(int8_path, args.threads)}
    result: Dict[str, object] = {
        'model': f'{arch}-{backbone}', 'size': f'{width}x{height}',
        'torch_ms': median_ms(torch_eager, args.warmup, args.repeats)}
    for precision, session in sessions.items():
        result[f'ort_{precision}_ms'] = median_ms(
            lambda s=session: s.run(None, {'input': frame}), args.warmup, args.repeats)
    result['int8_label_agreement'] = int8.label_agreement
    if evaluation is not None:
        # scored at the model's input size (labels resized nearest), the same for both
        for precision, session in sessions.items():
            matrix = ConfusionMatrix(table.num_classes, table.ignore_index)
            for image, label in zip(*evaluation):
                resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
                predicted = session.run(None, {'input': resized[None]})[0][0]
                matrix.update(cv2.resize(label, (width, height),
                                         interpolation=cv2.INTER_NEAREST), predicted)
            result[f'miou_{precision}'] = float(matrix.miou())
        result['eval_frames'] = len(evaluation[0])
    result['fp32_vs_torch'] = result['torch_ms'] / result['ort_fp32_ms']
    result['int8_vs_fp32'] = result['ort_fp32_ms'] / result['ort_int8_ms']
    return result


def bench_onnx_files(paths: List[str], args: argparse.Namespace) -> Dict[str, Dict[str, object]]:
    """
    Time existing ONNX models with ONNX Runtime (no torch or INT8 counterpart); by path.

    Each model is timed model-only (one ``run`` on a zero frame) and through the whole
    ``Segmenter.process``. With ``--rounds R`` the models take turns, ``repeats / R`` runs each
    per round, so that a host whose speed drifts (a shared CPU) slows them all alike and their
    ratio holds; the medians are over all rounds.
    """
    import onnx
    from seg_perception.core.segmenter import Segmenter

    height, width = args.size  # parsed by parse_size: (height, width)
    samples = sample_dir('images')
    frame = (cv2.resize(cv2.imread(str(list_images(samples)[0])), (width, height),
                        interpolation=cv2.INTER_AREA)
             if samples else np.zeros((height, width, 3), np.uint8))
    rows, runs = {}, []
    try:
        for path in paths:
            session = ort_session(path, args.threads)  # a missing, empty or bad file: named
            feed = zero_feed(session)
            try:
                spec = load_spec(path, session.get_modelmeta().custom_metadata_map)
                size = f'{spec.input_width}x{spec.input_height}'
            except SpecError:  # a foreign model: its input shape as it is
                size = 'x'.join(str(d) for d in next(iter(feed.values())).shape)
            graph = onnx.load(path, load_external_data=False).graph
            int8 = any(node.op_type == 'QuantizeLinear' for node in graph.node)
            segmenter = Segmenter(path, backend='onnxruntime', num_threads=args.threads)
            rows[path] = {'model': os.path.basename(path), 'size': size}
            runs.append((path, 'ort_int8_ms' if int8 else 'ort_fp32_ms',
                         lambda session=session, feed=feed: session.run(None, feed), segmenter))
            runs.append((path, 'segmenter_ms',
                         lambda segmenter=segmenter: segmenter.process(frame, 'bgr8'), segmenter))
        times: Dict[Tuple[str, str], List[float]] = {(path, key): [] for path, key, _, _ in runs}
        per_round = max(1, args.repeats // args.rounds)
        for _, _, function, _ in runs:
            wall_times_ms(function, args.warmup)
        for _ in range(args.rounds):
            for path, key, function, _ in runs:
                times[(path, key)] += wall_times_ms(function, per_round)
    finally:
        for _, _, _, segmenter in runs:
            segmenter.close()
    for (path, key), values in times.items():
        rows[path][key] = float(np.median(values))
    return rows


def format_table(rows: List[Dict[str, object]], threads: int) -> str:
    """Return the results as a Markdown table."""
    def cell(row: Dict[str, object], key: str, pattern: str) -> str:
        value = row.get(key)
        return '' if value is None else pattern.format(value)

    header = ('| model | input WxH | torch eager ms | ORT fp32 ms | ORT int8 ms | fp32 vs torch '
              '| int8 vs fp32 | int8 label agreement | mIoU fp32 | mIoU int8 '
              '| Segmenter.process ms |')
    lines = [f'{threads} threads, median ms per frame, uint8 frame to uint8 labels; '
             'Segmenter.process: bgr8 camera frame to labels and drivable mask', '',
             header, '|' + ' --- |' * 11]
    for row in rows:
        lines.append('| ' + ' | '.join([
            str(row['model']), str(row['size']),
            cell(row, 'torch_ms', '{:.1f}'),
            cell(row, 'ort_fp32_ms', '{:.1f}'),
            cell(row, 'ort_int8_ms', '{:.1f}'),
            cell(row, 'fp32_vs_torch', '{:.2f}x'), cell(row, 'int8_vs_fp32', '{:.2f}x'),
            cell(row, 'int8_label_agreement', '{:.2%}'),
            cell(row, 'miou_fp32', '{:.1%}'), cell(row, 'miou_int8', '{:.1%}'),
            cell(row, 'segmenter_ms', '{:.1f}')]) + ' |')
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    """Benchmark every model and print the table (and write JSON with ``--json``)."""
    architectures = [m for m in args.models if not m.endswith('.onnx')]
    if args.weights and len(architectures) != 1:
        raise SegPerceptionError('--weights needs exactly one architecture among the models')
    calibration = evaluation = None
    if architectures:
        from seg_perception.models.calibration import load_calibration_images
        if not args.calib:
            raise DataError('no CamVid sample frames are installed to calibrate INT8 on; '
                            'pass --calib DIR_OR_BAG')
        calibration = load_calibration_images(args.calib, args.calib_count)
        images_dir, labels_dir = args.eval or (sample_dir('images'), sample_dir('labels'))
        if images_dir and labels_dir and os.path.isdir(images_dir) and os.path.isdir(labels_dir):
            evaluation = load_labelled(images_dir, labels_dir, args.eval_count,
                                       load_class_table(args.classes))
        elif args.eval:
            raise SegPerceptionError(f'--eval {images_dir} {labels_dir}: both must be folders')
    rows = []
    files = bench_onnx_files([m for m in args.models if m.endswith('.onnx')], args)
    with tempfile.TemporaryDirectory(prefix='seg_perception_bench_') as folder:
        for name in args.models:
            row = (files[name] if name.endswith('.onnx')
                   else bench_architecture(name, args, calibration, evaluation, folder))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(format_table(rows, args.threads))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump({'threads': args.threads, 'results': rows}, stream, indent=2)
    return 0
