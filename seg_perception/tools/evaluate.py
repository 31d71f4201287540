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

Ground truth comes from an image and a label folder (matched by file stem), from bags (mono8
labels matched to the images by header stamp), and predictions either from running the model or
from a bag a live node recorded (``--predictions``). The confusion matrix is summed over the
whole set before dividing (per-class IoU, mIoU, pixel accuracy), likewise the drivable mask's
IoU, precision and recall. Frames that cannot be scored are skipped and counted by reason.

Many bags (``--bag`` repeated, ``--bags LIST``) are work units: :meth:`Evaluator.score_bag`
scores one bag and returns its exact integer totals (:class:`Totals`), one bag after another
in this process, or on Ray actors with ``--ray`` (:mod:`seg_perception.tools.fleet`); the
totals are merged in bag order, so both give the same numbers bit for bit. Two ``--model``
are scored in the same pass over the data (each frame read and decoded once) and compared.

Writes ``report.md``, ``report.html`` and, last, ``metrics.json`` into ``--report``; the old
report there is removed when the run starts, and a run that fails leaves at most a
``metrics.json`` with ``"complete": false`` (see :func:`seg_perception.tools.report.invalidate`).
"""

import argparse
from dataclasses import dataclass, field
import datetime
import glob
import heapq
import os
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from seg_perception.core import colorize
from seg_perception.core.backends import create_backend
from seg_perception.core.drivable import class_mask
from seg_perception.core.errors import (DataError, InputError, one_line, SegPerceptionError,
                                        SpecError, UsageError)
from seg_perception.core.imagecodec import to_rgb
from seg_perception.core.metrics import BinaryStats, ConfidenceSweep, ConfusionMatrix
from seg_perception.core.resources import bundled_yaml, CLASS_MAPS_DIR, default_model_path
from seg_perception.core.spec import (ClassTable, find_sidecar, load_class_table, load_spec,
                                      read_yaml, resolve_class_table_path)
from seg_perception.io import bags as bagio
from seg_perception.io import frames
from seg_perception.tools import fleet, pipeline, report
from seg_perception.tools.argtypes import (non_negative_float, non_negative_int, positive_float,
                                           positive_int)
from seg_perception.tools.infer import choose_image_topic
from seg_perception.tools.report import _number, Thumbnail


DEFAULT_STRIP_FRAMES = 3
THUMBNAIL_WIDTH = 320
DRIVABLE_TOPIC = '/segmentation/drivable_mask'
WORST_FRAMES = 10  # rows of the worst-frames tables
BAG_SUFFIXES = ('.mcap', '.db3', '.bag')
SPLIT_SUFFIX = re.compile(r'_\d+$')  # rosbag2 splits a recording into NAME_0, NAME_1, ...
MAX_MODELS = 2

# work unit states (the per-bag table's status column)
OK, DAMAGED, UNREADABLE, SKIPPED, FAILED = 'ok', 'damaged', 'unreadable', 'skipped', 'failed'
INTERRUPTED, NOT_RUN = 'interrupted', 'not run'
PROBLEMS = (DAMAGED, UNREADABLE, FAILED)  # a bag in one of these states makes the run exit 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the evaluate options."""
    pipeline.add_model_arguments(parser, repeat=True)
    parser.add_argument('--images', metavar='DIR', help='image folder (with --labels)')
    parser.add_argument('--labels', metavar='DIR',
                        help='label PNG folder, same file stems as --images')
    parser.add_argument('--bag', metavar='BAG', action='append',
                        help='bag with images and ground-truth labels; repeat it for several '
                             'bags (or, with --predictions, the ground truth for the '
                             'predictions)')
    parser.add_argument('--bags', metavar='LIST', action='append',
                        help='more bags: a text file with one bag path a line (relative to the '
                             'file; # comments) or a quoted glob such as "drives/**/*.mcap"')
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
                             '(e.g. cityscapes_to_camvid); with two models it maps the one '
                             'whose classes differ from the ground-truth table')
    parser.add_argument('--max', type=positive_int, metavar='N',
                        help='stop after N frames (of each bag)')
    parser.add_argument('--strip', type=non_negative_int, default=DEFAULT_STRIP_FRAMES,
                        metavar='K',
                        help='worst and best K frames shown in the report (default %(default)s)')
    parser.add_argument('--match-window', type=non_negative_float, default=frames.MATCH_WINDOW_S,
                        metavar='S', help='seconds of bag time an image waits for its label '
                                          '(default %(default)s)')
    parser.add_argument('--drivable-precision', type=precision_target, metavar='P',
                        help='name the lowest confidence threshold at which the drivable mask '
                             'reaches precision P in (0, 1] (needs a model with confidence)')
    parser.add_argument('--fail-if-worse', type=non_negative_float, metavar='POINTS',
                        help='with --model A --model B: exit 1 when the mIoU of B is more than '
                             'POINTS (percentage points) below that of A')
    pipeline.add_pool_arguments(parser)
    group = parser.add_argument_group('fleet evaluation on Ray (the [fleet] extra; docs/fleet.md)')
    group.add_argument('--ray', nargs='?', const=fleet.LOCAL, metavar='ADDRESS',
                       help='score the bags on Ray actors: no value starts a local Ray for the '
                            'run; "auto" or HOST:PORT (ray://HOST:PORT) joins a cluster')
    group.add_argument('--ray-workers', type=positive_int, metavar='N',
                       help='Ray workers (actors, each loads the models once; default: as many '
                            'as the CPUs (GPUs with --ray-gpus) of the cluster allow, at most one '
                            'per bag)')
    group.add_argument('--ray-cpus', type=positive_float, metavar='C',
                       help='CPUs per worker (default 1; also its inference threads when '
                            '--threads is 0)')
    group.add_argument('--ray-gpus', type=non_negative_float, metavar='G',
                       help='GPUs per worker (default 0; 0.5 puts two on a GPU)')
    group.add_argument('--ray-retries', type=non_negative_int, metavar='N',
                       help='times a bag is scored again after its worker process died '
                            f'(default {fleet.DEFAULT_RETRIES})')
    group.add_argument('--ray-timeout', type=positive_float, metavar='S',
                       help='seconds to reach the cluster at ADDRESS (default '
                            f'{fleet.CONNECT_TIMEOUT_S:g})')


RAY_OPTIONS = ('ray_workers', 'ray_cpus', 'ray_gpus', 'ray_retries', 'ray_timeout')


def ray_options(args: argparse.Namespace) -> fleet.RayOptions:
    """Return the --ray-* options (fleet.RayOptions' defaults where not given)."""
    given = {name[len('ray_'):]: getattr(args, name) for name in RAY_OPTIONS}
    given = {'timeout_s' if k == 'timeout' else k: v for k, v in given.items() if v is not None}
    return fleet.RayOptions(address=args.ray, **given)


def precision_target(text: str) -> float:
    """Parse a precision in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f'{text!r} must be a precision in (0, 1], e.g. 0.98')
    return value


# -- classes --------------------------------------------------------------------------------------
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


def ground_truth_table(args: argparse.Namespace, pred_table: Optional[Any]) -> Any:
    """Return the GT table: --gt-classes, else the target of --classes, else ``pred_table``."""
    target = read_class_map(args.classes)[2] if args.classes and not args.gt_classes else None
    if args.gt_classes or target:
        return load_class_table(args.gt_classes or target)
    if pred_table is not None:
        return pred_table
    raise SpecError('name the ground-truth class table with --gt-classes (e.g. camvid)')


def class_setup(args: argparse.Namespace, pred_table: Optional[Any],
                gt_table: Optional[Any] = None, use_map: bool = True) -> ClassSetup:
    """
    Resolve the GT table, the prediction -> GT mapping and the drivable classes.

    ``pred_table`` holds the classes of the predictions (the model's, or ``--pred-classes``);
    None means the predictions use the ground-truth classes. ``gt_table`` (default: from the
    options, see :func:`ground_truth_table`) and ``use_map`` False (score without --classes)
    are for the second model of an A/B run.
    """
    if gt_table is None:
        gt_table = ground_truth_table(args, pred_table)
    pred_table = pred_table or gt_table
    pred_classes = list(pred_table.classes)
    pred_lut, unmapped = None, []
    class_map = args.classes if use_map else None
    if class_map:
        pred_lut, unmapped = load_class_map(class_map, pred_classes, gt_table)
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
                      pred_classes=pred_classes, class_map=class_map, unmapped=unmapped)


def same_classes(first: Any, second: Any) -> bool:
    """Return True when two class tables have the same ids and names."""
    return ({c.id: c.name.lower() for c in first.classes}
            == {c.id: c.name.lower() for c in second.classes})


def class_setups(args: argparse.Namespace, pred_tables: Sequence[Optional[Any]],
                 names: Sequence[str]) -> List[ClassSetup]:
    """
    Return the ClassSetup of each model (``names`` say which, for the error).

    Two models share the ground truth. Tables that differ need ``--classes``: it maps each
    model whose classes are not the ground truth's (both, when both are the ground truth's).
    """
    if len(pred_tables) == 1:
        return [class_setup(args, pred_tables[0])]
    first, second = pred_tables
    if not args.classes and not same_classes(first, second):
        raise SpecError(
            f'the two models have different class tables ({names[0]}: {first.name} '
            f'{first.class_names}; {names[1]}: {second.name} {second.class_names}) and no '
            '--classes map: map the other model onto the ground truth with --classes MAP '
            '(e.g. cityscapes_to_camvid)')
    gt_table = ground_truth_table(args, first)
    differ = [not same_classes(table, gt_table) for table in pred_tables]
    return [class_setup(args, table, gt_table, use_map=different or not any(differ))
            for table, different in zip(pred_tables, differ)]


def palette_of(classes: Sequence[Any]) -> np.ndarray:
    """Return the 256x3 RGB palette of a class list (ids without a class are black)."""
    palette = np.zeros((256, 3), np.uint8)
    for c in classes:
        palette[c.id] = c.color
    return palette


# -- scoring --------------------------------------------------------------------------------------
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


@dataclass
class Totals:
    """
    What one model scored over a work unit, or over several merged: exact integer sums.

    ``worst``/``best`` are heaps of ``(key, -order, Thumbnail)`` holding the ``--strip``
    frames; ``order`` is global (unit index, then frame), so a merge keeps the same frames
    whatever the order the units finished in.
    """

    confusion: ConfusionMatrix
    drivable: BinaryStats = field(default_factory=BinaryStats)
    sweep: ConfidenceSweep = field(default_factory=ConfidenceSweep)
    per_frame: List[Dict[str, Any]] = field(default_factory=list)
    worst: List[Tuple[float, int, Any]] = field(default_factory=list)
    best: List[Tuple[float, int, Any]] = field(default_factory=list)
    skips: pipeline.SkipCounter = field(default_factory=pipeline.SkipCounter)
    timing: pipeline.Timing = field(default_factory=pipeline.Timing)

    @classmethod
    def empty(cls, setup: 'ClassSetup') -> 'Totals':
        """Return zero totals for the ground-truth classes of setup."""
        table = setup.gt_table
        return cls(ConfusionMatrix(table.num_classes, table.ignore_index))

    @property
    def evaluated(self) -> int:
        """Return the number of scored frames."""
        return len(self.per_frame)

    def add_strip(self, item: Tuple[float, int, Any], best: bool, strip: int) -> None:
        """Keep item if it is among the ``strip`` worst (or best) frames."""
        heap = self.best if best else self.worst
        if strip <= 0:
            return
        if len(heap) < strip:
            heapq.heappush(heap, item)
        else:
            heapq.heappushpop(heap, item)

    def merge(self, other: 'Totals', strip: int) -> 'Totals':
        """Add another unit's totals (units in order); return self."""
        self.confusion.merge(other.confusion)
        self.drivable.merge(other.drivable)
        self.sweep.merge(other.sweep)
        self.per_frame.extend(other.per_frame)
        for item in other.worst:
            self.add_strip(item, False, strip)
        for item in other.best:
            self.add_strip(item, True, strip)
        self.skips.merge(other.skips)
        self.timing.merge(other.timing)
        return self

    def strips(self) -> Tuple[List[Any], List[Any]]:
        """Return (worst frames, lowest first; best frames, highest first)."""
        worst = [item[2] for item in sorted(self.worst, key=lambda i: (i[0], i[1]),
                                            reverse=True)]
        best = [item[2] for item in sorted(self.best, key=lambda i: (i[0], i[1]),
                                           reverse=True)]
        return worst, best


class Scorer:
    """Scores the frames of one work unit against ground truth into a :class:`Totals`."""

    def __init__(self, setup: 'ClassSetup', strip: int, camera_images: bool,
                 bag: Optional[str] = None, unit_index: int = 0) -> None:
        self.setup = setup
        self.gt_palette = palette_of(setup.gt_table.classes)
        self.pred_palette = palette_of(setup.pred_classes)
        self.camera_images = camera_images
        self.num_classes = setup.gt_table.num_classes
        self.ignore = setup.gt_table.ignore_index
        self.strip = strip
        self.bag = bag
        self.totals = Totals.empty(setup)
        self.score_skips = pipeline.SkipCounter()  # frames the scoring itself rejected
        self._order = unit_index << 32

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
                         colorize.colorize(small_gt, self.gt_palette), bag=self.bag or '')

    def collect(self, record: FrameScore) -> None:
        """Merge one frame's score into the totals (main thread, in frame order)."""
        if record.skip:
            self.score_skips.add(record.skip, record.skip_message)
            return
        totals = self.totals
        totals.confusion.merge(record.confusion)
        totals.drivable.merge(record.drivable)
        if record.sweep is not None:
            totals.sweep.merge(record.sweep)
        entry: Dict[str, Any] = {'name': record.name, 'miou': record.miou,
                                 'pixel_accuracy': record.pixel_accuracy}
        if record.stamp is not None:
            entry['stamp_ns'] = record.stamp
        if self.bag is not None:
            entry['bag'] = self.bag
        totals.per_frame.append(entry)
        if record.thumbnail is None:
            return
        self._order += 1
        totals.add_strip((-record.miou, -self._order, record.thumbnail), False, self.strip)
        totals.add_strip((record.miou, -self._order, record.thumbnail), True, self.strip)

    def finish(self, frame_skips: pipeline.SkipCounter, timing: pipeline.Timing) -> Totals:
        """Return the totals with the frames skipped before scoring and the timing added."""
        self.totals.skips = pipeline.SkipCounter().merge(frame_skips).merge(self.score_skips)
        self.totals.timing = timing
        return self.totals


@dataclass
class RecordedResult:
    """Labels and drivable mask read from a predictions bag (what a SegResult would hold)."""

    labels: np.ndarray
    drivable: np.ndarray
    timings: Dict[str, float]


# -- work units -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BagUnit:
    """One bag to score: where it is, and the sequence (recording) it belongs to."""

    index: int
    path: str  # as the report shows it (list entries joined to the list file's folder)
    location: str  # the absolute path a worker opens (on shared storage for a cluster)
    sequence: str


@dataclass
class UnitResult:
    """What scoring one work unit gave: its status and, per model, its totals."""

    unit: BagUnit
    status: str = OK
    error: Optional[str] = None
    image_topic: Optional[str] = None
    totals: List[Totals] = field(default_factory=list)
    stats: frames.MatchStats = field(default_factory=frames.MatchStats)
    source: Dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    worker: Optional[int] = None  # the Ray worker's process id (set by the fleet)
    node: Optional[str] = None  # the Ray node id
    attempts: int = 1

    @property
    def evaluated(self) -> int:
        """Return the frames scored (of the first model)."""
        return self.totals[0].evaluated if self.totals else 0


def sequence_of(path: str) -> str:
    """Return a bag's sequence: its name without suffix and rosbag2 split index (``_0``)."""
    name = os.path.basename(os.path.normpath(path))
    stem, suffix = os.path.splitext(name)
    if suffix.lower() in BAG_SUFFIXES:
        name = stem
    return SPLIT_SUFFIX.sub('', name) or name


def is_bag(path: str) -> bool:
    """Return True for a bag file (.mcap, .db3, .bag) or a ROS 2 bag directory."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, 'metadata.yaml'))
    return path.lower().endswith(BAG_SUFFIXES)


def expand_bag_list(spec: str) -> List[str]:
    """Return the bags of one ``--bags`` value: a glob, or a text file listing bag paths."""
    if glob.has_magic(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        found = [path for path in matches if is_bag(path)]
        if not found:
            others = f' ({len(matches)} paths, none a bag)' if matches else ''
            raise DataError(f'--bags {spec!r}: the pattern matches no bag{others}')
        return found
    if os.path.isdir(spec) or (os.path.isfile(spec) and is_bag(spec)):
        raise UsageError(f'--bags {spec} is a bag, not a list of bags; give it with --bag (or '
                         'a glob such as "DIR/*.mcap" for the bags in a folder)')
    try:
        with open(spec, encoding='utf-8') as stream:
            lines = stream.read().splitlines()
    except FileNotFoundError:
        raise DataError(f'--bags {spec}: no such file (a list of bag paths or a glob)') from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f'--bags {spec}: cannot read the list ({one_line(error)})') from None
    entries = [line.strip() for line in lines]
    entries = [entry for entry in entries if entry and not entry.startswith('#')]
    if not entries:
        raise DataError(f'--bags {spec}: the list names no bag')
    folder = os.path.dirname(spec)
    missing = [entry for entry in entries
               if not os.path.exists(os.path.join(folder, os.path.expanduser(entry)))]
    if missing:
        raise DataError(f'--bags {spec}: {len(missing)} of {len(entries)} bags not found: '
                        + ', '.join(missing[:5]) + (', ...' if len(missing) > 5 else ''))
    return [os.path.normpath(os.path.join(folder, os.path.expanduser(entry)))
            for entry in entries]


def bag_size(path: str) -> int:
    """Return the bytes of a bag file or directory (0 if it cannot be read)."""
    try:
        if os.path.isdir(path):
            return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())
        return os.path.getsize(path)
    except OSError:
        return 0


def bag_units(args: argparse.Namespace) -> List[BagUnit]:
    """Return the work units of --bag and --bags; missing bags and repeats fail here."""
    paths = list(args.bag or [])
    for path in paths:
        if not os.path.exists(path):
            raise DataError(f'{path}: bag not found')
    for spec in args.bags or []:
        paths += expand_bag_list(spec)
    seen: Dict[str, str] = {}
    units = []
    for index, path in enumerate(paths):
        location = os.path.abspath(path)
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f'bag {path} given twice (also as {seen[key]}): it would be '
                             'scored twice')
        seen[key] = path
        units.append(BagUnit(index, path, location, sequence_of(path)))
    return units


# -- models ---------------------------------------------------------------------------------------
def model_paths(args: argparse.Namespace) -> List[Optional[str]]:
    """Return the --model values (None: the bundled model)."""
    return list(args.model) if args.model else [None]


def model_label(path: Optional[str]) -> str:
    """Return how a model is named in messages."""
    return path or '(bundled default)'


def read_model_spec(args: argparse.Namespace, path: Optional[str]) -> Any:
    """
    Return a model's spec without loading it for inference (the driver of a Ray run).

    The sidecar, else an ONNX file's metadata (read with ONNX Runtime on the CPU), else the
    spec of the model loaded with the run's options.
    """
    path = path or default_model_path()
    if find_sidecar(path):
        return load_spec(path)
    if path.lower().endswith('.onnx'):
        backend = create_backend('onnxruntime', path, device='cpu')
        try:
            return load_spec(path, backend.metadata())
        finally:
            backend.close()
    segmenter = pipeline.load_segmenter(args, path)
    try:
        return segmenter.spec
    finally:
        segmenter.close()


def check_confidence(args: argparse.Namespace, spec: Any, path: Optional[str]) -> None:
    """Refuse --drivable-precision for a model that gives no confidence."""
    if args.drivable_precision and not spec.gives_confidence:
        raise DataError(f'--drivable-precision: {path or default_model_path()} gives no '
                        'confidence (labels output); export it with --output '
                        'labels_confidence or logits')


class Evaluator:
    """
    The models (loaded once) and class setups of a run; scores one work unit at a time.

    The in-process run makes one and scores bag after bag; a Ray run makes one in each actor
    (:mod:`seg_perception.tools.fleet`). Both call :meth:`score_bag`, so their totals agree.
    """

    def __init__(self, args: argparse.Namespace, mode: str = 'bag') -> None:
        self.args = args
        self.mode = mode
        self.models = model_paths(args)
        self.segmenters: List[Any] = []
        try:
            pred_tables: List[Optional[Any]] = [None]
            if mode != 'predictions' or args.model:
                for model in self.models:
                    segmenter = pipeline.load_segmenter(args, model)
                    self.segmenters.append(segmenter)
                    check_confidence(args, segmenter.spec, segmenter.model_path)
                pred_tables = [table_from_spec(s.spec) for s in self.segmenters]
            elif args.pred_classes:
                pred_tables = [load_class_table(args.pred_classes)]
            self.setups = class_setups(args, pred_tables, [model_label(m) for m in self.models])
        except BaseException:
            self.close()
            raise

    def describe(self) -> List[Optional[Dict[str, Any]]]:
        """Return what the report says about each model (None: recorded predictions)."""
        if not self.segmenters:
            return [None]
        return [pipeline.model_description(s, self.args, m)
                for s, m in zip(self.segmenters, self.models)]

    def close(self) -> None:
        """Release the models."""
        for segmenter in self.segmenters:
            segmenter.close()
        self.segmenters = []

    def _scorers(self, unit: Optional[BagUnit]) -> List[Scorer]:
        return [Scorer(setup, self.args.strip, camera_images=self.mode != 'predictions',
                       bag=unit.path if unit is not None and self.mode == 'bag' else None,
                       unit_index=unit.index if unit is not None else 0)
                for setup in self.setups]

    def _run(self, scorers: List[Scorer], jobs: Any, total: Optional[int], result: UnitResult,
             show_progress: bool) -> Optional[DataError]:
        """Decode each frame once, segment it with every model, score it for each."""
        timings = [pipeline.Timing() for _ in scorers]
        if self.mode == 'predictions':
            segments = [recorded_segment(self.setups[0], timings[0])]
        else:
            segments = [pipeline.timed_segment(s, timing, confidence=s.spec.gives_confidence)
                        for s, timing in zip(self.segmenters, timings)]
        frame_skips = pipeline.SkipCounter()

        def segment(frame: Any) -> List[Any]:
            return [step(frame) for step in segments]

        def handle(frame: Any, outcomes: List[Any]) -> List[FrameScore]:
            return [scorer.score(frame, outcome) for scorer, outcome in zip(scorers, outcomes)]

        def collect(records: List[FrameScore]) -> None:
            for scorer, record in zip(scorers, records):
                scorer.collect(record)

        try:
            return pipeline.run_loop(jobs, segment, handle, collect, frame_skips, timings[0],
                                     self.args.workers, total, 'evaluate', show_progress)
        finally:
            for timing in timings[1:]:
                timing.wall_s = timings[0].wall_s
            result.totals = [scorer.finish(frame_skips, timing)
                             for scorer, timing in zip(scorers, timings)]

    def score_bag(self, unit: BagUnit, show_progress: bool = False) -> UnitResult:
        """
        Score one bag; return its status and totals (never raises for a bad bag).

        A bag without the ground-truth topic is skipped; one that cannot be opened or read is
        ``unreadable`` (nothing of it counts); a truncated or damaged one is ``damaged`` and the
        frames before the damage count. Ctrl-C ends it ``interrupted`` with what was scored.
        """
        args = self.args
        started = time.perf_counter()
        result = UnitResult(unit, totals=[Totals.empty(setup) for setup in self.setups])
        scorers = self._scorers(unit)
        reader = bagio.BagReader(unit.location)
        try:
            reader.open()
            if args.gt_topic not in reader.topics():
                try:
                    reader.require_topic(args.gt_topic, (bagio.IMAGE,), 'ground-truth topic')
                except DataError as error:
                    result.status, result.error = SKIPPED, self._at(unit, error)
                    return result
            image_topic = choose_image_topic(reader, args.image_topic, '--image-topic')
            result.image_topic = image_topic
            jobs = frames.matched_bag_jobs(reader, image_topic, args.gt_topic,
                                           self.setups[0].gt_lut, result.stats,
                                           args.match_window, args.max)
            count = reader.topics().get(image_topic)
            total = min(filter(None, (count.count if count else None, args.max)), default=None)
            error = self._run(scorers, jobs, total, result, show_progress)
            if error is not None:
                result.status, result.error = DAMAGED, self._at(unit, error)
        except KeyboardInterrupt:
            result.status = INTERRUPTED
        except Exception as error:  # noqa: B902 - one bad bag must not end a fleet run
            what = one_line(error) if isinstance(error, (SegPerceptionError, OSError)) else (
                f'unexpected {type(error).__name__}: {one_line(error)}')
            result.status, result.error = UNREADABLE, self._at(unit, what)
            result.totals = [Totals.empty(setup) for setup in self.setups]
            result.stats = frames.MatchStats()
        finally:
            reader.close()
            result.wall_s = time.perf_counter() - started
        return result

    @staticmethod
    def _at(unit: BagUnit, error: Any) -> str:
        """Return an error line that names the bag as the user gave it."""
        text = one_line(error)
        if text.startswith(unit.location + ':') and unit.location != unit.path:
            text = unit.path + text[len(unit.location):]
        return text

    def score_folder(self) -> UnitResult:
        """Score --images against --labels (one unit)."""
        args = self.args
        unit = BagUnit(0, args.images, os.path.abspath(args.images), '')
        result = UnitResult(unit, source={'mode': 'images', 'images': args.images,
                                          'labels': args.labels})
        jobs, orphans = frames.folder_jobs(args.images, args.labels, self.setups[0].gt_lut,
                                           limit=args.max)
        result.stats.gt_without_image += orphans
        return self._score_source(result, jobs, len(jobs))

    def score_predictions(self) -> UnitResult:
        """Score the labels recorded in --predictions (one unit)."""
        args = self.args
        unit = BagUnit(0, args.predictions, os.path.abspath(args.predictions), '')
        result = UnitResult(unit)
        readers = []
        try:
            pred_reader = bagio.BagReader(args.predictions)
            readers.append(pred_reader)
            pred_reader.open()
            gt_reader = pred_reader
            gt_bag = args.bag[0] if args.bag else None
            if gt_bag and os.path.abspath(gt_bag) != os.path.abspath(args.predictions):
                gt_reader = bagio.BagReader(gt_bag)
                readers.append(gt_reader)
                gt_reader.open()
            jobs = prediction_jobs(args, pred_reader, gt_reader, self.setups[0], result.stats)
            count = pred_reader.topics().get(args.pred_topic)
            total = min(filter(None, (count.count if count else None, args.max)), default=None)
            result.source = {'mode': 'predictions', 'predictions': args.predictions,
                             'pred_topic': args.pred_topic, 'ground_truth_bag': gt_reader.path,
                             'gt_topic': args.gt_topic}
            return self._score_source(result, jobs, total)
        finally:
            for reader in readers:
                reader.close()

    def _score_source(self, result: UnitResult, jobs: Any, total: Optional[int]) -> UnitResult:
        started = time.perf_counter()
        scorers = self._scorers(None)
        try:
            error = self._run(scorers, jobs, total, result, show_progress=True)
            if error is not None:
                result.status, result.error = DAMAGED, one_line(error)
        except KeyboardInterrupt:
            result.status = INTERRUPTED
        result.wall_s = time.perf_counter() - started
        return result


# -- sources --------------------------------------------------------------------------------------
def _check_mode(args: argparse.Namespace) -> str:
    bags = args.bag or []
    modes = [m for m, on in (('images', args.images), ('predictions', args.predictions),
                             ('bag', (bags or args.bags) and not args.predictions)) if on]
    if len(modes) != 1:
        raise UsageError('give exactly one input: --images DIR --labels DIR, --bag BAG (or '
                         '--bags LIST), or --predictions BAG [--bag GT_BAG]')
    mode = modes[0]
    if mode == 'images' and not args.labels:
        raise UsageError('--images needs --labels DIR (the ground truth)')
    if mode != 'images' and args.labels:
        raise UsageError('--labels goes with --images; a bag carries its labels on --gt-topic')
    models = model_paths(args)
    if len(models) > MAX_MODELS:
        raise UsageError(f'--model given {len(models)} times: at most two models (A and B) '
                         'are compared in one run')
    if args.fail_if_worse is not None and len(models) != 2:
        raise UsageError('--fail-if-worse compares two models: give two --model (A, then B)')
    if args.ray is not None and mode != 'bag':
        raise UsageError('--ray scores bags (--bag, --bags); --images and --predictions run '
                         'in this process')
    stray = [name for name in RAY_OPTIONS if getattr(args, name) is not None]
    if args.ray is None and stray:
        raise UsageError(f'--{stray[0].replace("_", "-")} goes with --ray')
    if mode == 'predictions':
        if args.bags or len(bags) > 1:
            raise UsageError('--predictions takes one ground-truth --bag (GT_BAG)')
        if len(models) > 1:
            raise UsageError('--predictions scores recorded labels: give at most one --model '
                             '(for its class table)')
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


# -- run ------------------------------------------------------------------------------------------
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
    started = time.perf_counter()
    units = bag_units(args) if mode == 'bag' else []
    info: Optional[Dict[str, Any]] = None
    if mode == 'bag' and args.ray is not None:
        setups, descriptions, results, info = _run_on_ray(args, units, started)
    else:
        evaluator = Evaluator(args, mode)
        try:
            setups, descriptions = evaluator.setups, evaluator.describe()
            if mode == 'bag':
                results, info = _run_in_process(evaluator, units, started)
            elif mode == 'images':
                results = [evaluator.score_folder()]
            else:
                results = [evaluator.score_predictions()]
        finally:
            evaluator.close()
    merge_started = time.perf_counter()
    merged = merge_results(results, setups, args.strip)
    if info is not None:
        info['merge_s'] = time.perf_counter() - merge_started
    interrupted = any(r.status in (INTERRUPTED, NOT_RUN) for r in results)
    error = run_error(results, args.report, interrupted)
    metrics = build_metrics(args, mode, descriptions, setups, merged, results, info, error,
                            interrupted)
    if not interrupted and all(r.status in (UNREADABLE, SKIPPED, FAILED) for r in results):
        failure = DataError(nothing_scored(results))  # nothing was read at all
        report.write_failure(args.report, failure, dict(metrics, error=None))
        raise failure
    worst, best = merged[0].strips()
    latencies = {k: v for k, v in merged[0].timing.stages.items() if k != 'total'} if mode != \
        'predictions' else {}
    report.write_report(args.report, metrics, merged[0].confusion.matrix,
                        setups[0].gt_table.class_names, palette_of(setups[0].gt_table.classes),
                        worst, best, latencies)
    print(summary_line(metrics, merged[0].timing, mode, args.report))
    if 'comparison' in metrics:
        print(comparison_line(metrics))
    points = metrics.get('drivable_operating_points') or {}
    if 'requested_precision' in points:
        chosen = points['recommended']
        print(f'  drivable precision >= {points["requested_precision"]:g}: ' + (
            f'confidence threshold {chosen["threshold"]} (precision {chosen["precision"]:.4f}, '
            f'recall {chosen["recall"]:.4f}); set drivable.min_confidence to it'
            if chosen else 'no confidence threshold reaches it'))
    for reason, message in merged[0].skips.examples.items():
        print(f'  skipped ({reason}), e.g.: {message}')
    for result in results:
        if result.status == SKIPPED and len(results) > 1:
            print(f'  skipped bag: {result.error}')
    if setups[-1].unmapped or setups[0].unmapped:
        unmapped = [name for setup in setups for name in setup.unmapped]
        print(f'  model classes without a ground-truth class (counted as wrong): '
              f'{", ".join(dict.fromkeys(unmapped))}')
    if interrupted:
        raise KeyboardInterrupt
    if error is not None:
        raise DataError(error)
    if not merged[0].per_frame:
        reasons = merged[0].skips.text() or 'no input frames'
        raise DataError(f'no frame could be evaluated ({reasons}); '
                        f'see {os.path.join(args.report, report.METRICS_FILE)}')
    comparison = metrics.get('comparison')
    if comparison and comparison['failed']:
        raise DataError(fail_if_worse_line(comparison))
    return 0


def _run_in_process(evaluator: Evaluator, units: List[BagUnit], started: float
                    ) -> Tuple[List[UnitResult], Dict[str, Any]]:
    """Score the bags one after another here; return their results and the run's facts."""
    info: Dict[str, Any] = {'runner': 'in-process', 'address': None, 'workers': 1,
                            'retries': 0, 'startup_s': time.perf_counter() - started}
    scoring_started = time.perf_counter()
    results: List[UnitResult] = []
    strips = StripKeeper(evaluator.setups, evaluator.args.strip)
    progress = pipeline.UnitProgress(len(units), 'evaluate') if len(units) > 1 else None
    try:
        for unit in units:
            result = evaluator.score_bag(unit, show_progress=progress is None)
            strips.fold(result)
            results.append(result)
            if progress is not None:
                progress.advance(result.evaluated)
            if result.status == INTERRUPTED:
                break
    except KeyboardInterrupt:
        pass  # between two bags: the report covers the bags scored so far
    finally:
        if progress is not None:
            progress.close()
    results += [UnitResult(unit, status=NOT_RUN) for unit in units[len(results):]]
    info['scoring_s'] = time.perf_counter() - scoring_started
    strips.restore(results)
    return results, info


class StripKeeper:
    """
    The worst/best thumbnails of a run, folded in as each unit's result arrives.

    A driver thus keeps ``2 x --strip`` thumbnails per model instead of that many per bag. The
    heaps are ordered by (score, global frame order), so folding in any order keeps the same
    frames as merging at the end.
    """

    def __init__(self, setups: Sequence[ClassSetup], strip: int) -> None:
        self.strip = strip
        self.kept = [Totals.empty(setup) for setup in setups]

    def fold(self, result: UnitResult) -> None:
        """Move a result's thumbnails into the kept ones."""
        for kept, totals in zip(self.kept, result.totals):
            for item in totals.worst:
                kept.add_strip(item, False, self.strip)
            for item in totals.best:
                kept.add_strip(item, True, self.strip)
            totals.worst, totals.best = [], []

    def restore(self, results: List[UnitResult]) -> None:
        """Hand the kept thumbnails to the first result that has totals (merged from there)."""
        holder = next((r for r in results if len(r.totals) == len(self.kept)), None)
        if holder is None:
            return
        for kept, totals in zip(self.kept, holder.totals):
            totals.worst, totals.best = kept.worst, kept.best


def worker_config(args: argparse.Namespace, options: fleet.RayOptions) -> argparse.Namespace:
    """
    Return the options a Ray worker's Evaluator gets: its work stays within its --ray-cpus.

    Inference threads default to the worker's CPUs, and its decode/write threads are capped to
    the CPUs beyond the one that runs inference (none for one CPU): Ray places workers by the
    CPUs they reserve, and a 1-CPU worker that ran decode threads beside inference used about
    1.3 cores, so two of them on two cores slowed each other (1.55x instead of 2x).
    """
    config = argparse.Namespace(**vars(args))
    if not config.threads and not options.gpus:
        config.threads = max(1, int(round(options.cpus)))
    config.workers = min(config.workers, max(0, int(options.cpus) - 1))
    return config


def _run_on_ray(args: argparse.Namespace, units: List[BagUnit], started: float
                ) -> Tuple[List[ClassSetup], List[Any], List[UnitResult], Dict[str, Any]]:
    """Score the bags on Ray actors (one Evaluator each); return as the in-process run does."""
    models = model_paths(args)
    specs = [read_model_spec(args, model) for model in models]  # the class check comes first
    for spec, model in zip(specs, models):
        check_confidence(args, spec, model)
    setups = class_setups(args, [table_from_spec(spec) for spec in specs],
                          [model_label(m) for m in models])
    strips = StripKeeper(setups, args.strip)
    options = ray_options(args)
    with fleet.RayFleet(options) as ray_fleet:
        workers = ray_fleet.start(Evaluator, worker_config(args, options), len(units))
        startup_s = time.perf_counter() - started
        # the biggest bags go first so that no long bag starts last (results merge in the
        # given order whatever the order they are scored in)
        outcome = ray_fleet.run(sorted(units, key=lambda u: -bag_size(u.location)),
                                strips.fold)
    results = []
    for unit in units:
        if unit.index in outcome.results:
            results.append(outcome.results[unit.index])
        elif unit.index in outcome.failed:
            results.append(UnitResult(unit, status=FAILED, error=outcome.failed[unit.index]))
        else:
            results.append(UnitResult(unit, status=INTERRUPTED if unit.index in
                                      outcome.in_flight else NOT_RUN))
    info = dict(outcome.info, startup_s=startup_s)
    strips.restore(results)
    return setups, workers[0]['describe'], results, info


# -- merging and metrics --------------------------------------------------------------------------
def merge_results(results: Sequence[UnitResult], setups: Sequence[ClassSetup], strip: int
                  ) -> List[Totals]:
    """Return each model's totals over every unit, merged in unit order (exact sums)."""
    merged = [Totals.empty(setup) for setup in setups]
    for result in results:
        for totals, part in zip(merged, result.totals):
            totals.merge(part, strip)
    return merged


def nothing_scored(results: Sequence[UnitResult]) -> str:
    """Return the error of a run in which no bag could be read."""
    if len(results) == 1:
        return results[0].error or 'nothing could be scored'
    return (f'none of the {len(results)} bags could be scored ('
            + ', '.join(f'{r.status} {r.unit.path}' for r in results[:5])
            + (', ...' if len(results) > 5 else '') + f'); first: {results[0].error}')


def run_error(results: Sequence[UnitResult], report_dir: str, interrupted: bool
              ) -> Optional[str]:
    """Return the run's error line: interrupted, or the bags that could not be scored fully."""
    if interrupted:
        done = sum(1 for r in results if r.status not in (INTERRUPTED, NOT_RUN))
        return (f'interrupted (Ctrl-C) after {done} of {len(results)} '
                f'{"bags" if len(results) != 1 else "units"}; the numbers cover what was '
                'scored before')
    problems = [r for r in results if r.status in PROBLEMS]
    if not problems:
        return None
    if len(results) == 1:
        return problems[0].error
    names = ', '.join(f'{os.path.basename(os.path.normpath(r.unit.path))} {r.status}'
                      for r in problems[:5]) + (', ...' if len(problems) > 5 else '')
    return (f'{len(problems)} of {len(results)} bags could not be scored fully ({names}); '
            f'the per-bag table of {os.path.join(report_dir, report.MARKDOWN_FILE)} says why; '
            f'first: {problems[0].error}')


def road_class(table: Any) -> Optional[int]:
    """Return the id of the class named road, else of the first drivable class."""
    by_name = {c.name.lower(): c.id for c in table.classes}
    if 'road' in by_name:
        return by_name['road']
    return by_name.get(table.drivable[0].lower()) if table.drivable else None


def unit_scores(totals: Totals, setup: ClassSetup) -> Dict[str, Any]:
    """Return the per-bag (or per-sequence) numbers of one model."""
    confusion, drivable = totals.confusion, totals.drivable
    road = road_class(setup.gt_table)
    model_ms = totals.timing.model_ms
    return {
        'frames': {'inputs': totals.evaluated + totals.skips.total,
                   'evaluated': totals.evaluated, 'skipped': totals.skips.total},
        'miou': confusion.miou(), 'pixel_accuracy': confusion.pixel_accuracy(),
        'road_iou': float(confusion.iou()[road]) if road is not None else None,
        'drivable_iou': drivable.iou(), 'drivable_precision': drivable.precision(),
        'drivable_recall': drivable.recall(),
        'latency_ms': {'p50': float(np.percentile(model_ms, 50)),
                       'mean': float(np.mean(model_ms))} if model_ms else None,
    }


def bag_row(result: UnitResult, setups: Sequence[ClassSetup]) -> Dict[str, Any]:
    """Return one row of the per-bag table."""
    totals = result.totals or [Totals.empty(setup) for setup in setups]
    row = {'bag': result.unit.path, 'sequence': result.unit.sequence, 'status': result.status,
           'error': result.error, 'image_topic': result.image_topic,
           **unit_scores(totals[0], setups[0]), 'wall_s': result.wall_s,
           'worker': result.worker, 'node': result.node, 'attempts': result.attempts}
    if len(setups) > 1:
        row['candidate'] = unit_scores(totals[1], setups[1])
    return row


def sequence_rows(results: Sequence[UnitResult], setups: Sequence[ClassSetup]
                  ) -> List[Dict[str, Any]]:
    """Return the per-sequence table: the bags of a sequence merged (scored bags only)."""
    groups: Dict[str, List[UnitResult]] = {}
    for result in results:
        if result.status in (OK, DAMAGED, INTERRUPTED) and result.totals:
            groups.setdefault(result.unit.sequence, []).append(result)
    rows = []
    for sequence, members in groups.items():
        merged = merge_results(members, setups, 0)
        row = {'sequence': sequence, 'bags': len(members), **unit_scores(merged[0], setups[0])}
        if len(setups) > 1:
            row['candidate'] = unit_scores(merged[1], setups[1])
        rows.append(row)
    return rows


def worst_frames(per_frame: Sequence[Dict[str, Any]], count: int = WORST_FRAMES
                 ) -> List[Dict[str, Any]]:
    """Return the ``count`` frames of lowest mIoU, with their bag and stamp."""
    scored = [f for f in per_frame if f.get('miou') is not None and np.isfinite(f['miou'])]
    return [{k: f[k] for k in ('bag', 'name', 'stamp_ns', 'miou') if k in f}
            for f in sorted(scored, key=lambda f: f['miou'])[:count]]


def model_metrics(args: argparse.Namespace, mode: str, description: Any, setup: ClassSetup,
                  totals: Totals) -> Dict[str, Any]:
    """Return the scores of one model (the top level of metrics.json, or its candidate)."""
    drivable = totals.drivable.to_dict()
    drivable['classes'] = list(setup.gt_table.drivable)
    return {
        'model': description,
        'unmapped_model_classes': setup.unmapped,
        'segmentation': totals.confusion.to_dict(setup.gt_table.class_names),
        'drivable': drivable,
        'drivable_operating_points': operating_points(totals.sweep, args.drivable_precision),
        'latency_ms': totals.timing.latency() if mode != 'predictions' else {},
        'throughput': totals.timing.throughput() if mode != 'predictions' else {},
    }


def build_metrics(args: argparse.Namespace, mode: str, descriptions: Sequence[Any],
                  setups: Sequence[ClassSetup], merged: Sequence[Totals],
                  results: Sequence[UnitResult], info: Optional[Dict[str, Any]],
                  error: Optional[str], interrupted: bool) -> Dict[str, Any]:
    """Return the metrics.json content."""
    first = merged[0]
    setup = setups[0]
    skips = first.skips
    frames_info = {'inputs': first.evaluated + skips.total, 'evaluated': first.evaluated,
                   'skipped': skips.total, 'skip_reasons': dict(sorted(skips.counts.items())),
                   'skip_examples': skips.examples,
                   'gt_without_image': sum(r.stats.gt_without_image for r in results),
                   'duplicate_gt': sum(r.stats.duplicate_gt for r in results)}
    source = dict(results[0].source) if mode != 'bag' else bag_source(args, results)
    if args.classes:
        source['class_map'] = args.classes
    source['gt_classes'] = setup.gt_table.name
    scores = model_metrics(args, mode, descriptions[0], setup, first)
    metrics = {
        'title': os.path.basename(os.path.normpath(args.report)),
        'tool': 'seg-perception evaluate',
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'complete': error is None,
        'interrupted': interrupted,
        'error': error,
        'model': scores.pop('model'),
        'input': source,
        'classes': setup.gt_table.class_names,
        'ignore_index': setup.gt_table.ignore_index,
        'unmapped_model_classes': scores.pop('unmapped_model_classes'),
        'frames': frames_info,
        **scores,
    }
    if mode == 'bag':
        counts: Dict[str, int] = {'total': len(results)}
        for result in results:
            counts[result.status] = counts.get(result.status, 0) + 1
        metrics['fleet'] = dict(info or {}, bags=counts, frames_per_second=(
            first.evaluated / info['scoring_s'] if info and info.get('scoring_s') else None))
        metrics['bags'] = [bag_row(result, setups) for result in results]
        metrics['sequences'] = sequence_rows(results, setups)
    metrics['worst_frames'] = worst_frames(first.per_frame)
    metrics['strip'] = {side: [{'bag': t.bag or None, 'name': t.name, 'miou': t.score}
                               for t in thumbnails]
                        for side, thumbnails in zip(('worst', 'best'), first.strips())}
    if len(merged) > 1:
        metrics['candidate'] = dict(model_metrics(args, mode, descriptions[1], setups[1],
                                                  merged[1]), per_frame=merged[1].per_frame)
        metrics['comparison'] = compare(args, descriptions, setups, merged, results)
    metrics['per_frame'] = first.per_frame
    return metrics


def bag_source(args: argparse.Namespace, results: Sequence[UnitResult]) -> Dict[str, Any]:
    """Return the input description of a bag run."""
    topics = sorted({r.image_topic for r in results if r.image_topic})
    source: Dict[str, Any] = {'mode': 'bag'}
    if len(results) == 1:
        source['bag'] = results[0].unit.path
    else:
        source['bags'] = len(results)
    source['image_topic'] = topics[0] if len(topics) == 1 else (
        args.image_topic or ', '.join(topics) or None)
    source['gt_topic'] = args.gt_topic
    return source


def compare(args: argparse.Namespace, descriptions: Sequence[Any],
            setups: Sequence[ClassSetup], merged: Sequence[Totals],
            results: Sequence[UnitResult]) -> Dict[str, Any]:
    """Return the A/B comparison: deltas (B - A) overall, per class, per bag, per frame."""
    a, b = merged
    names = setups[0].gt_table.class_names
    miou_a, miou_b = a.confusion.miou(), b.confusion.miou()
    delta_points = 100.0 * (miou_b - miou_a)
    per_class = {name: float(ib - ia) for name, ia, ib in
                 zip(names, a.confusion.iou(), b.confusion.iou())}
    per_bag = []
    for result in results:
        if result.status in (OK, DAMAGED, INTERRUPTED) and len(result.totals) == 2:
            bag_a, bag_b = (t.confusion.miou() for t in result.totals)
            per_bag.append({'bag': result.unit.path, 'miou_a': bag_a, 'miou_b': bag_b,
                            'delta': bag_b - bag_a})
    scores_a = {(f.get('bag'), f['name']): f['miou'] for f in a.per_frame}
    frames_delta = []
    for frame in b.per_frame:
        before = scores_a.get((frame.get('bag'), frame['name']))
        if before is None or not np.isfinite(before) or not np.isfinite(frame['miou']):
            continue
        if frame['miou'] < before:
            frames_delta.append({k: frame[k] for k in ('bag', 'name', 'stamp_ns') if k in frame})
            frames_delta[-1].update(miou_a=before, miou_b=frame['miou'],
                                    delta=frame['miou'] - before)
    frames_delta.sort(key=lambda f: f['delta'])
    threshold = args.fail_if_worse
    failed = threshold is not None and not (np.isfinite(delta_points)
                                            and -delta_points <= threshold)
    label = [(d or {}).get('path') or model_label(m) for d, m in
             zip(descriptions, model_paths(args))]
    return {'a': label[0], 'b': label[1], 'miou_a': miou_a, 'miou_b': miou_b,
            'miou_delta_points': delta_points,
            'pixel_accuracy_delta': b.confusion.pixel_accuracy() - a.confusion.pixel_accuracy(),
            'drivable_iou_delta': b.drivable.iou() - a.drivable.iou(),
            'per_class_delta': per_class, 'per_bag': per_bag,
            'most_worse_frames': frames_delta[:WORST_FRAMES],
            'fail_if_worse': threshold, 'failed': failed}


def comparison_line(metrics: Dict[str, Any]) -> str:
    """Return the summary line of an A/B run."""
    comparison = metrics['comparison']
    return (f'  A {comparison["a"]}: mIoU {_number(comparison["miou_a"])}; B {comparison["b"]}: '
            f'mIoU {_number(comparison["miou_b"])}; B - A '
            f'{comparison["miou_delta_points"]:+.2f} points')


def fail_if_worse_line(comparison: Dict[str, Any]) -> str:
    """Return the error of a failed --fail-if-worse gate."""
    return (f'model B {comparison["b"]} (mIoU {_number(comparison["miou_b"])}) is '
            f'{-comparison["miou_delta_points"]:.2f} points below model A {comparison["a"]} '
            f'(mIoU {_number(comparison["miou_a"])}): more than --fail-if-worse '
            f'{comparison["fail_if_worse"]:g}')


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
    bags = ''
    fleet_info = metrics.get('fleet') or {}
    counts = dict(fleet_info.get('bags') or {})
    if counts.get('total', 1) > 1:
        total = counts.pop('total')
        bags = f' of {total} bags (' + ', '.join(f'{v} {k}' for k, v in counts.items()) + ')'
    speed = f' | {timing.summary_line()}' if mode != 'predictions' else ''
    if fleet_info.get('runner') == 'ray':
        speed += (f' | ray: {fleet_info["workers"]} workers, {fleet_info["retries"]} retries, '
                  f'{fleet_info.get("frames_per_second") or 0.0:.1f} frames/s')
    state = '' if metrics['complete'] else ' INCOMPLETE'
    return (f'evaluate{state}: mIoU {_number(seg["miou"])}, pixel accuracy '
            f'{_number(seg["pixel_accuracy"])}, drivable IoU '
            f'{_number(metrics["drivable"]["iou"])} over {frames_info["evaluated"]} frames'
            f'{bags}{skipped} -> {report_dir}{speed}')
