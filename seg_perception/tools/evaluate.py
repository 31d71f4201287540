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
``seg-perception evaluate``: score a model, or recorded predictions, against ground truth.

Ground truth comes from an image and a label folder (matched by file stem), from a bag (mono8
labels matched to the images by header stamp), and predictions either from running the model or
from a bag a live node recorded (``--predictions``). The confusion matrix is summed over the
whole set before dividing (per-class IoU, mIoU, pixel accuracy), likewise the drivable mask's
IoU, precision and recall. Frames that cannot be scored are skipped and counted by reason.
Writes ``report.md``, ``report.html`` and, last, ``metrics.json`` into ``--report``; the old
report there is removed when the run starts, and a run that fails leaves at most a
``metrics.json`` with ``"complete": false`` (see :func:`seg_perception.tools.report.invalidate`).
"""

import argparse
from dataclasses import dataclass
import datetime
import heapq
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from seg_perception.core import colorize
from seg_perception.core.drivable import class_mask
from seg_perception.core.errors import (DataError, InputError, SegPerceptionError, SpecError,
                                        UsageError)
from seg_perception.core.imagecodec import to_rgb
from seg_perception.core.metrics import BinaryStats, ConfidenceSweep, ConfusionMatrix
from seg_perception.core.resources import bundled_yaml, CLASS_MAPS_DIR
from seg_perception.core.spec import (ClassTable, load_class_table, read_yaml,
                                      resolve_class_table_path)
from seg_perception.io import bags as bagio
from seg_perception.io import frames
from seg_perception.tools import pipeline, report
from seg_perception.tools.argtypes import non_negative_float, non_negative_int, positive_int
from seg_perception.tools.infer import choose_image_topic
from seg_perception.tools.report import _number, Thumbnail


DEFAULT_STRIP_FRAMES = 3
THUMBNAIL_WIDTH = 320
DRIVABLE_TOPIC = '/segmentation/drivable_mask'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the evaluate options."""
    pipeline.add_model_arguments(parser)
    parser.add_argument('--images', metavar='DIR', help='image folder (with --labels)')
    parser.add_argument('--labels', metavar='DIR',
                        help='label PNG folder, same file stems as --images')
    parser.add_argument('--bag', metavar='BAG',
                        help='bag with images and ground-truth labels (or, with --predictions, '
                             'the ground truth for the predictions)')
    parser.add_argument('--image-topic', metavar='T',
                        help='image topic of --bag (default: the only camera image topic)')
    parser.add_argument('--gt-topic', default=bagio.DEFAULT_GT_TOPIC, metavar='G',
                        help='mono8 ground-truth topic of --bag (default %(default)s)')
    parser.add_argument('--predictions', metavar='BAG',
                        help='evaluate labels a live node recorded into this bag (no model run)')
    parser.add_argument('--pred-topic', default=bagio.DEFAULT_LABELS_TOPIC, metavar='P',
                        help='label topic of --predictions (default %(default)s)')
    parser.add_argument('--pred-drivable-topic', default=DRIVABLE_TOPIC, metavar='D',
                        help='drivable mask topic of --predictions, used when present '
                             '(default %(default)s; else the mask is the drivable classes)')
    parser.add_argument('--pred-classes', metavar='TABLE',
                        help='class table of --predictions without --model (default: the '
                             'ground-truth table)')
    parser.add_argument('--report', required=True, metavar='DIR',
                        help='output folder for metrics.json, report.md, report.html')
    parser.add_argument('--gt-classes', metavar='TABLE',
                        help='class table of the ground truth, a name (camvid, cityscapes) or '
                             'YAML (default: the target of --classes, else the model classes)')
    parser.add_argument('--classes', metavar='MAP',
                        help='map the model classes onto the ground-truth table: a YAML '
                             '{model class name: GT class name or null}, or a bundled map '
                             '(e.g. cityscapes_to_camvid)')
    parser.add_argument('--max', type=positive_int, metavar='N', help='stop after N frames')
    parser.add_argument('--strip', type=non_negative_int, default=DEFAULT_STRIP_FRAMES,
                        metavar='K',
                        help='worst and best K frames shown in the report (default %(default)s)')
    parser.add_argument('--match-window', type=non_negative_float, default=frames.MATCH_WINDOW_S,
                        metavar='S', help='seconds of bag time an image waits for its label '
                                          '(default %(default)s)')
    parser.add_argument('--drivable-precision', type=precision_target, metavar='P',
                        help='name the lowest confidence threshold at which the drivable mask '
                             'reaches precision P in (0, 1] (needs a model with confidence)')
    pipeline.add_pool_arguments(parser)


def precision_target(text: str) -> float:
    """Parse a precision in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f'{text!r} must be a precision in (0, 1], e.g. 0.98')
    return value


# -- classes -------------------------------------------------------------------------------------
@dataclass
class ClassSetup:
    """How predictions map onto the ground truth and what counts as drivable."""

    gt_table: Any
    gt_lut: np.ndarray  # dataset label value -> GT class id (255 = ignore)
    pred_lut: Optional[np.ndarray]  # predicted class id -> GT class id (None = identity)
    gt_drivable_lut: np.ndarray  # GT class id -> 1 for drivable
    pred_drivable_ids: List[int]  # predicted ids that are drivable (recorded labels only)
    pred_classes: List[Any]
    class_map: Optional[str]
    unmapped: List[str]


def table_from_spec(spec: Any) -> Any:
    """Return a ClassTable made of a model spec's classes (GT in the model's own classes)."""
    return ClassTable(name=spec.dataset or 'model', classes=list(spec.classes),
                      drivable=list(spec.drivable_classes), ignore_index=spec.ignore_index,
                      source=spec.source)


def resolve_class_map(name_or_path: str) -> str:
    """Return a class map path: a file, or a bundled name such as ``cityscapes_to_camvid``."""
    return bundled_yaml(CLASS_MAPS_DIR, name_or_path, 'class map')


def read_class_map(name_or_path: str) -> Tuple[str, Dict[Any, Any], Optional[str]]:
    """Return (path, {model class: GT class or None}, target table name or None)."""
    path = resolve_class_map(name_or_path)
    data = read_yaml(path, 'class map')
    target = None
    if isinstance(data, dict) and ('map' in data or 'target' in data):
        if not isinstance(data.get('map'), dict) or not data['map']:
            raise SpecError(f'{path}: field map must be a mapping {{model class name: GT class '
                            f'name or null}}, got {data.get("map")!r}')
        target = data.get('target')
        if target is not None:
            try:
                resolve_class_table_path(str(target))
            except SpecError as error:
                raise SpecError(f'{path}: field target: {error}') from None
        data = data['map']
    if not isinstance(data, dict) or not data:
        raise SpecError(f'{path}: expected a mapping {{model class name: GT class name}} (or '
                        '{target: TABLE, map: {...}})')
    return path, data, str(target) if target else None


def load_class_map(name_or_path: str, pred_classes: Sequence[Any], gt_table: Any
                   ) -> Tuple[np.ndarray, List[str]]:
    """
    Read a {model class: GT class or null} YAML; return the id LUT and unmapped classes.

    Model classes mapped to null, or left out, become ``255`` in the LUT: their pixels count as
    wrong wherever the ground truth has a class. Unknown names on either side raise SpecError.
    """
    path, data, _ = read_class_map(name_or_path)
    source = {c.name.lower(): c.id for c in pred_classes}
    target = {c.name.lower(): c.id for c in gt_table.classes}
    lut = np.full(256, gt_table.ignore_index, np.uint8)
    mapped = set()
    for name, gt_name in data.items():
        key = str(name).lower()
        if key not in source:
            raise SpecError(f'{path}: {name!r} is not a class of the model; model classes: '
                            f'{[c.name for c in pred_classes]}')
        if gt_name is None:
            continue
        if str(gt_name).lower() not in target:
            raise SpecError(f'{path}: {name!r} maps to {gt_name!r}, not a class of '
                            f'{gt_table.name}; its classes: {gt_table.class_names}')
        lut[source[key]] = target[str(gt_name).lower()]
        mapped.add(key)
    unmapped = [c.name for c in pred_classes if c.name.lower() not in mapped]
    return lut, unmapped


def class_setup(args: argparse.Namespace, pred_table: Optional[Any]) -> ClassSetup:
    """
    Resolve the GT table, the prediction -> GT mapping and the drivable classes.

    ``pred_table`` holds the classes of the predictions (the model's, or ``--pred-classes``);
    None means the predictions use the ground-truth classes.
    """
    target = read_class_map(args.classes)[2] if args.classes and not args.gt_classes else None
    if args.gt_classes or target:
        gt_table = load_class_table(args.gt_classes or target)
    elif pred_table is not None:
        gt_table = pred_table
    else:
        raise SpecError('name the ground-truth class table with --gt-classes (e.g. camvid)')
    pred_table = pred_table or gt_table
    pred_classes = list(pred_table.classes)
    pred_lut, unmapped = None, []
    if args.classes:
        pred_lut, unmapped = load_class_map(args.classes, pred_classes, gt_table)
    else:
        pred_names = {c.id: c.name.lower() for c in pred_classes}
        gt_names = {c.id: c.name.lower() for c in gt_table.classes}
        if pred_names != gt_names:
            raise SpecError(f'the model classes {[c.name for c in pred_classes]} differ from '
                            f'the ground truth {gt_table.name} classes {gt_table.class_names}; '
                            'map them with --classes MAP.yaml')
    drivable_lut = np.zeros(256, np.uint8)
    by_name = {c.name.lower(): c.id for c in gt_table.classes}
    for name in gt_table.drivable:
        drivable_lut[by_name[name.lower()]] = 1
    pred_by_name = {c.name.lower(): c.id for c in pred_classes}
    return ClassSetup(gt_table=gt_table, gt_lut=gt_table.label_lut(), pred_lut=pred_lut,
                      gt_drivable_lut=drivable_lut,
                      pred_drivable_ids=[pred_by_name[n.lower()] for n in pred_table.drivable],
                      pred_classes=pred_classes, class_map=args.classes, unmapped=unmapped)


def palette_of(classes: Sequence[Any]) -> np.ndarray:
    """Return the 256x3 RGB palette of a class list (ids without a class are black)."""
    palette = np.zeros((256, 3), np.uint8)
    for c in classes:
        palette[c.id] = c.color
    return palette


# -- scoring -------------------------------------------------------------------------------------
@dataclass
class FrameScore:
    """The metrics of one frame (computed in the write pool), merged on the main thread."""

    name: str
    stamp: Optional[int]
    confusion: Any = None
    drivable: Any = None
    sweep: Any = None
    miou: float = float('nan')
    pixel_accuracy: float = float('nan')
    thumbnail: Any = None
    skip: Optional[str] = None
    skip_message: str = ''


class Scorer:
    """Scores frames against ground truth and keeps the totals and the worst/best frames."""

    def __init__(self, setup: ClassSetup, strip: int, camera_images: bool) -> None:
        self.setup = setup
        self.gt_palette = palette_of(setup.gt_table.classes)
        self.pred_palette = palette_of(setup.pred_classes)
        self.camera_images = camera_images
        self.num_classes = setup.gt_table.num_classes
        self.ignore = setup.gt_table.ignore_index
        self.confusion = ConfusionMatrix(self.num_classes, self.ignore)
        self.drivable = BinaryStats()
        self.sweep = ConfidenceSweep()  # drivable operating points, when results have confidence
        self.strip = strip
        self.worst: List[Tuple[float, int, Any]] = []  # max-heap by -score
        self.best: List[Tuple[float, int, Any]] = []  # min-heap by score
        self.per_frame: List[Dict[str, Any]] = []
        self._order = 0

    def score(self, frame: Any, result: Any) -> FrameScore:
        """Score one frame (runs in the write pool)."""
        record = FrameScore(frame.name, frame.job.stamp)
        pred = result.labels
        if self.setup.pred_lut is not None:
            pred = self.setup.pred_lut[pred]
        gt = frame.gt
        try:
            record.confusion = ConfusionMatrix(self.num_classes, self.ignore).update(gt, pred)
        except InputError as error:
            record.skip, record.skip_message = error.reason, f'{frame.name}: {error}'
            return record
        valid = gt != self.ignore
        gt_drivable = self.setup.gt_drivable_lut[gt]
        record.drivable = BinaryStats().update(gt_drivable, result.drivable > 0, valid)
        if getattr(result, 'confidence', None) is not None:
            record.sweep = ConfidenceSweep().update(gt_drivable, result.drivable > 0,
                                                    result.confidence, valid)
        record.miou = record.confusion.miou()
        record.pixel_accuracy = record.confusion.pixel_accuracy()
        if self.strip > 0 and np.isfinite(record.miou):
            record.thumbnail = self._thumbnail(frame, result.labels, gt, record.miou)
        return record

    def _thumbnail(self, frame: Any, labels: np.ndarray, gt: np.ndarray, score: float) -> Any:
        height, width = labels.shape
        size = (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / width)))
        small_labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
        small_gt = cv2.resize(gt, size, interpolation=cv2.INTER_NEAREST)
        image = frame.extras.get('image')
        if image is None and self.camera_images:
            image = (frame.image, frame.encoding)
        if image is not None:
            rgb = cv2.resize(to_rgb(*image), size, interpolation=cv2.INTER_AREA)
            picture = colorize.overlay(rgb, small_labels, self.pred_palette)
        else:
            picture = colorize.colorize(small_labels, self.pred_palette)
        return Thumbnail(frame.name, score, picture,
                         colorize.colorize(small_gt, self.gt_palette))

    def collect(self, record: FrameScore, skips: Any) -> None:
        """Merge one frame's score into the totals (main thread, in frame order)."""
        if record.skip:
            skips.add(record.skip, record.skip_message)
            return
        self.confusion.merge(record.confusion)
        self.drivable.merge(record.drivable)
        if record.sweep is not None:
            self.sweep.merge(record.sweep)
        entry = {'name': record.name, 'miou': record.miou,
                 'pixel_accuracy': record.pixel_accuracy}
        if record.stamp is not None:
            entry['stamp_ns'] = record.stamp
        self.per_frame.append(entry)
        if record.thumbnail is None:
            return
        self._order += 1
        worst_item = (-record.miou, -self._order, record.thumbnail)
        best_item = (record.miou, -self._order, record.thumbnail)
        for heap, item in ((self.worst, worst_item), (self.best, best_item)):
            if len(heap) < self.strip:
                heapq.heappush(heap, item)
            else:
                heapq.heappushpop(heap, item)

    def strips(self) -> Tuple[List[Any], List[Any]]:
        """Return (worst frames, lowest first; best frames, highest first)."""
        worst = [item[2] for item in sorted(self.worst, key=lambda i: (i[0], i[1]),
                                            reverse=True)]
        best = [item[2] for item in sorted(self.best, key=lambda i: (i[0], i[1]),
                                           reverse=True)]
        return worst, best


@dataclass
class RecordedResult:
    """Labels and drivable mask read from a predictions bag (what a SegResult would hold)."""

    labels: np.ndarray
    drivable: np.ndarray
    timings: Dict[str, float]


# -- sources -------------------------------------------------------------------------------------
def _check_mode(args: argparse.Namespace) -> str:
    modes = [m for m, on in (('images', args.images), ('predictions', args.predictions),
                             ('bag', args.bag and not args.predictions)) if on]
    if len(modes) != 1:
        raise UsageError('give exactly one input: --images DIR --labels DIR, --bag BAG, or '
                         '--predictions BAG [--bag GT_BAG]')
    mode = modes[0]
    if mode == 'images' and not args.labels:
        raise UsageError('--images needs --labels DIR (the ground truth)')
    if mode != 'images' and args.labels:
        raise UsageError('--labels goes with --images; a bag carries its labels on --gt-topic')
    if (mode == 'predictions' and args.model is None and not args.pred_classes
            and not args.gt_classes and not args.classes):
        raise UsageError('--predictions without --model needs --gt-classes TABLE (e.g. camvid): '
                         'the class table of the recorded labels')
    if mode == 'predictions' and args.model is None and args.drivable_precision:
        raise UsageError('--drivable-precision needs --model: recorded predictions carry no '
                         'confidence')
    if mode == 'predictions' and args.model is None and args.classes and not args.pred_classes:
        raise UsageError('--classes with --predictions needs --model or --pred-classes (the '
                         'class table of the recorded labels)')
    return mode


def prediction_jobs(args: argparse.Namespace, pred_reader: Any, gt_reader: Any,
                    setup: ClassSetup, stats: Any) -> Any:
    """Yield jobs whose 'image' is a recorded label map, with GT (and image) by stamp."""
    pred_type = pred_reader.require_topic(args.pred_topic, (bagio.IMAGE,), 'prediction topic')
    gt_reader.require_topic(args.gt_topic, (bagio.IMAGE,), 'ground-truth topic')
    aux = [args.gt_topic]
    if args.image_topic:
        gt_reader.require_topic(args.image_topic, bagio.IMAGE_TYPES, 'image topic')
        aux.append(args.image_topic)
    # a pre-read cut by a truncated bag keeps what it read; the frames whose label or mask may
    # lie beyond the cut are skipped as bag_truncated and the cut ends the run (exit 1)
    gt_read = frames.index_by_stamp(gt_reader, aux)
    gt_index = gt_read.messages
    stats.duplicate_gt += gt_read.duplicates.get(args.gt_topic, 0)
    stats.gt_without_image += gt_read.duplicates.get(f'{args.gt_topic} unreadable', 0)
    drivable_read = None
    drivable_index: Dict[int, Tuple[str, Any]] = {}
    if args.pred_drivable_topic in pred_reader.topics():
        drivable_read = frames.index_by_stamp(pred_reader, [args.pred_drivable_topic])
        drivable_index = drivable_read.messages[args.pred_drivable_topic]
    cut = next((read.error for read in (gt_read, drivable_read)
                if read is not None and read.error is not None), None)
    pairs = frames.StampPairs()
    for stamp, gt in gt_index[args.gt_topic].items():
        pairs.offer(1, stamp, gt)
    produced = 0
    affected = 0

    def beyond_cut(job: Any, what: str, path: str) -> Any:
        nonlocal affected
        affected += 1
        job.skip, job.skip_message = 'bag_truncated', (
            f'{args.pred_topic} stamp {bagio.format_stamp(job.stamp)}: its {what} may be '
            f'after the point where {path} is cut')
        return job

    for message in pred_reader.messages([args.pred_topic]):
        if args.max is not None and produced >= args.max:
            if cut is not None and affected:
                raise cut
            return  # not every prediction was read: no label can be called imageless
        job = frames.image_job(pred_reader, message, pred_type, produced, labels=True)
        produced += 1
        if job.stamp is None:
            yield job
            continue
        outcome, gt = pairs.offer(0, job.stamp, job)
        if outcome == pairs.DUPLICATE:
            job.skip, job.skip_message = 'duplicate_stamp', (
                f'{args.pred_topic} stamp {bagio.format_stamp(job.stamp)} seen before (a looped '
                'replay?); scored once')
            yield job
            continue
        if outcome == pairs.WAITING and gt_read.error is not None:
            yield beyond_cut(job, 'label', gt_reader.path)
            continue
        if outcome == pairs.WAITING:  # every label was offered first: this one has none
            job.skip, job.skip_message = 'no_gt', (
                f'{args.pred_topic} stamp {bagio.format_stamp(job.stamp)}: no label on '
                f'{args.gt_topic} in {gt_reader.path} with the same stamp')
            yield job
            continue
        source = f'{args.gt_topic} stamp {bagio.format_stamp(job.stamp)}'
        job.load_gt = frames.bag_label_loader(gt[1], gt[0], source, setup.gt_lut)
        image = gt_index.get(args.image_topic, {}).get(job.stamp) if args.image_topic else None
        if image is not None:
            job.load_extras['image'] = _loader(image, f'{args.image_topic} stamp '
                                                      f'{bagio.format_stamp(job.stamp)}')
        drivable = drivable_index.get(job.stamp)
        if drivable is None and drivable_read is not None and drivable_read.error is not None:
            # scoring it with the class mask instead would mix two kinds of drivable masks
            yield beyond_cut(job, 'drivable mask', pred_reader.path)
            continue
        if drivable is not None:
            job.load_extras['drivable'] = _loader(drivable, f'{args.pred_drivable_topic} stamp '
                                                            f'{bagio.format_stamp(job.stamp)}')
        yield job
    stats.gt_without_image += len(pairs.waiting[1])
    if cut is not None:
        raise cut


def _loader(entry: Tuple[str, Any], source: str) -> Any:
    return lambda: bagio.image_from_message(entry[1], entry[0], source)


def recorded_segment(setup: ClassSetup, timing: Any) -> Any:
    """Return the ``segment`` step of predictions mode: the recorded labels are the result."""

    def segment(frame: Any) -> RecordedResult:
        labels = np.asarray(frame.image)
        if 'drivable' in frame.extras:
            drivable = np.asarray(frame.extras['drivable'][0])
        else:
            drivable = class_mask(labels, setup.pred_drivable_ids)
        timing.add({}, 0.0)
        return RecordedResult(labels, drivable, {})
    return segment


# -- run -----------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """Evaluate; write the report; print one summary line; exit 1 if the input was damaged."""
    mode = _check_mode(args)
    report.invalidate(args.report)  # from here on, no older report passes for this run's
    try:
        return _evaluate(args, mode)
    except (SegPerceptionError, OSError) as error:
        if not os.path.exists(os.path.join(args.report, report.METRICS_FILE)):
            report.write_failure(args.report, error)  # the run wrote none: say why
        raise


def _evaluate(args: argparse.Namespace, mode: str) -> int:
    """Run the evaluation of :func:`run` and write its report."""
    readers: List[Any] = []
    stats = frames.MatchStats()
    timing = pipeline.Timing()
    skips = pipeline.SkipCounter()
    orphans = 0
    try:
        segmenter = None
        pred_table = None
        if mode != 'predictions' or args.model:
            segmenter = pipeline.load_segmenter(args)
            pred_table = table_from_spec(segmenter.spec)
            if args.drivable_precision and not segmenter.spec.gives_confidence:
                raise DataError(f'--drivable-precision: {segmenter.model_path} gives no '
                                'confidence (labels output); export it with --output '
                                'labels_confidence or logits')
        elif args.pred_classes:
            pred_table = load_class_table(args.pred_classes)
        setup = class_setup(args, pred_table)
        scorer = Scorer(setup, args.strip, camera_images=mode != 'predictions')
        if mode == 'images':
            jobs, orphans = frames.folder_jobs(args.images, args.labels, setup.gt_lut,
                                               limit=args.max)
            total: Optional[int] = len(jobs)
            source = {'mode': 'images', 'images': args.images, 'labels': args.labels}
        elif mode == 'bag':
            reader = bagio.BagReader(args.bag)
            readers.append(reader)
            reader.open()
            image_topic = choose_image_topic(reader, args.image_topic, '--image-topic')
            jobs = frames.matched_bag_jobs(reader, image_topic, args.gt_topic, setup.gt_lut,
                                           stats, args.match_window, args.max)
            count = reader.topics().get(image_topic)
            total = min(filter(None, (count.count if count else None, args.max)), default=None)
            source = {'mode': 'bag', 'bag': args.bag, 'image_topic': image_topic,
                      'gt_topic': args.gt_topic}
        else:
            pred_reader = bagio.BagReader(args.predictions)
            readers.append(pred_reader)
            pred_reader.open()
            gt_reader = pred_reader
            if args.bag and os.path.abspath(args.bag) != os.path.abspath(args.predictions):
                gt_reader = bagio.BagReader(args.bag)
                readers.append(gt_reader)
                gt_reader.open()
            jobs = prediction_jobs(args, pred_reader, gt_reader, setup, stats)
            count = pred_reader.topics().get(args.pred_topic)
            total = min(filter(None, (count.count if count else None, args.max)), default=None)
            source = {'mode': 'predictions', 'predictions': args.predictions,
                      'pred_topic': args.pred_topic, 'ground_truth_bag': gt_reader.path,
                      'gt_topic': args.gt_topic}
        if args.classes:
            source['class_map'] = args.classes
        source['gt_classes'] = setup.gt_table.name
        wants_confidence = segmenter is not None and segmenter.spec.gives_confidence
        segment = (pipeline.timed_segment(segmenter, timing, confidence=wants_confidence)
                   if mode != 'predictions' else recorded_segment(setup, timing))
        error = pipeline.run_loop(jobs, segment, scorer.score,
                                  lambda record: scorer.collect(record, skips), skips, timing,
                                  args.workers, total, 'evaluate')
    finally:
        for reader in readers:
            reader.close()
    metrics = build_metrics(args, mode, segmenter, setup, scorer, skips, stats, timing,
                            source, error, orphans)
    worst, best = scorer.strips()
    latencies = {k: v for k, v in timing.stages.items() if k != 'total'} if mode != \
        'predictions' else {}
    report.write_report(args.report, metrics, scorer.confusion.matrix,
                        setup.gt_table.class_names, scorer.gt_palette, worst, best, latencies)
    print(summary_line(metrics, timing, mode, args.report))
    points = metrics.get('drivable_operating_points') or {}
    if 'requested_precision' in points:
        chosen = points['recommended']
        print(f'  drivable precision >= {points["requested_precision"]:g}: ' + (
            f'confidence threshold {chosen["threshold"]} (precision {chosen["precision"]:.4f}, '
            f'recall {chosen["recall"]:.4f}); set drivable.min_confidence to it'
            if chosen else 'no confidence threshold reaches it'))
    for reason, message in skips.examples.items():
        print(f'  skipped ({reason}), e.g.: {message}')
    if setup.unmapped:
        print(f'  model classes without a ground-truth class (counted as wrong): '
              f'{", ".join(setup.unmapped)}')
    if error is not None:
        raise error
    if not scorer.per_frame:
        raise DataError(f'no frame could be evaluated ({skips.text() or "no input frames"}); '
                        f'see {os.path.join(args.report, report.METRICS_FILE)}')
    return 0


def build_metrics(args: argparse.Namespace, mode: str, segmenter: Any, setup: ClassSetup,
                  scorer: Scorer, skips: Any, stats: Any, timing: Any,
                  source: Dict[str, Any], error: Optional[DataError],
                  orphans: int) -> Dict[str, Any]:
    """Return the metrics.json content."""
    names = setup.gt_table.class_names
    segmentation = scorer.confusion.to_dict(names)
    evaluated = len(scorer.per_frame)
    frames_info = {'inputs': evaluated + skips.total, 'evaluated': evaluated,
                   'skipped': skips.total, 'skip_reasons': dict(sorted(skips.counts.items())),
                   'skip_examples': skips.examples,
                   'gt_without_image': stats.gt_without_image + orphans,
                   'duplicate_gt': stats.duplicate_gt}
    drivable = scorer.drivable.to_dict()
    drivable['classes'] = list(setup.gt_table.drivable)
    metrics = {
        'title': os.path.basename(os.path.normpath(args.report)),
        'tool': 'seg-perception evaluate',
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'complete': error is None,
        'error': str(error) if error is not None else None,
        'model': (pipeline.model_description(segmenter, args) if segmenter is not None
                  else None),
        'input': source,
        'classes': names,
        'ignore_index': setup.gt_table.ignore_index,
        'unmapped_model_classes': setup.unmapped,
        'frames': frames_info,
        'segmentation': segmentation,
        'drivable': drivable,
        'drivable_operating_points': operating_points(scorer.sweep, args.drivable_precision),
        'latency_ms': timing.latency() if mode != 'predictions' else {},
        'throughput': timing.throughput() if mode != 'predictions' else {},
        'per_frame': scorer.per_frame,
    }
    return metrics


def operating_points(sweep: ConfidenceSweep, target: Optional[float]) -> Optional[Dict[str, Any]]:
    """Return the drivable precision/recall sweep and the threshold for a target precision."""
    if not sweep.gt_positives and not sweep.false.any():
        return None  # no confidence (labels models, recorded predictions)
    points = sweep.to_dict()
    if target is not None:
        threshold = sweep.threshold_for_precision(target)
        curve = sweep.curve()
        points['requested_precision'] = target
        points['recommended'] = None if threshold is None else {
            'threshold': threshold, 'precision': float(curve['precision'][threshold]),
            'recall': float(curve['recall'][threshold])}
    return points


def summary_line(metrics: Dict[str, Any], timing: Any, mode: str, report_dir: str) -> str:
    """Return the one-line summary printed at the end."""
    seg = metrics['segmentation']
    frames_info = metrics['frames']
    skipped = (f', {frames_info["skipped"]} skipped ('
               + ', '.join(f'{k} {v}' for k, v in frames_info['skip_reasons'].items()) + ')'
               if frames_info['skipped'] else '')
    speed = f' | {timing.summary_line()}' if mode != 'predictions' else ''
    state = '' if metrics['complete'] else ' INCOMPLETE'
    return (f'evaluate{state}: mIoU {_number(seg["miou"])}, pixel accuracy '
            f'{_number(seg["pixel_accuracy"])}, drivable IoU '
            f'{_number(metrics["drivable"]["iou"])} over {frames_info["evaluated"]} frames'
            f'{skipped} -> {report_dir}{speed}')
