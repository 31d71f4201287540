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
The offline segmentation loop of ``infer`` and ``evaluate``: decode, segment, write.

Three stages overlap: a decode pool reads and decodes the next frames, the main thread runs the
model on one frame at a time (deterministic, in order), and a write pool encodes and writes the
results and computes metrics. :class:`Timing` records the core's per-stage timings and the
tool's own overhead: wall time minus model time, the cost of everything around the model that the
pools could not hide.
"""

import argparse
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
import time
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional

import numpy as np
from tqdm import tqdm

from seg_perception.core import Segmenter
from seg_perception.core.backends import CHOICES as BACKEND_CHOICES
from seg_perception.core.backends.base import PRECISIONS
from seg_perception.core.errors import DataError
from seg_perception.io import frames as frames_module
from seg_perception.tools.argtypes import non_negative_int


PERCENTILES = (50, 95, 99)


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = False,
                        repeat: bool = False) -> None:
    """
    Declare --model and the Segmenter options (defaults are the Segmenter's own).

    ``repeat`` lets ``--model`` be given more than once (a list, e.g. evaluate's A/B run).
    """
    if repeat:
        parser.add_argument('--model', required=required, metavar='M', action='append',
                            help='ONNX model or TensorRT engine (default: the bundled model); '
                                 'give it twice (--model A --model B) to compare two models '
                                 'in one pass over the data')
    else:
        parser.add_argument('--model', required=required, metavar='M',
                            help='ONNX model or TensorRT engine (default: the bundled model)')
    parser.add_argument('--backend', default='auto', choices=BACKEND_CHOICES,
                        help='inference backend (default %(default)s)')
    parser.add_argument('--device', default='', help='e.g. cpu or cuda:0 (default: backend)')
    parser.add_argument('--precision', default='fp32', choices=PRECISIONS,
                        help='fp32 | fp16 | int8 (TensorRT)')
    parser.add_argument('--threads', type=non_negative_int, default=0, metavar='N',
                        help='CPU inference threads (0 = backend default)')
    parser.add_argument('--trust-model-code', action='store_true',
                        help='load torch files that run code when loaded (TorchScript, .pt2); '
                             'only for a file you trust')


def add_pool_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare --workers (decode and write pools)."""
    parser.add_argument('--workers', type=non_negative_int,
                        default=frames_module.default_workers(),
                        metavar='N', help='decode and write threads each (default %(default)s; '
                                          '0 = everything on the main thread)')


UNSET: Any = object()


def load_segmenter(args: argparse.Namespace, model: Optional[str] = UNSET) -> Any:
    """Create the core Segmenter from the parsed model options (``model``: not args.model)."""
    model = args.model if model is UNSET else model
    return Segmenter(model_path=model or None, backend=args.backend, device=args.device,
                     precision=args.precision, num_threads=args.threads,
                     trust_code=args.trust_model_code)


def model_description(segmenter: Any, args: argparse.Namespace,
                      model: Optional[str] = UNSET) -> Dict[str, Any]:
    """Return what the reports say about the model (``model``: not args.model)."""
    model = args.model if model is UNSET else model
    described: Dict[str, Any] = {}
    describe = getattr(segmenter, 'describe', None)
    if callable(describe):
        described = {k: v for k, v in describe().items()
                     if isinstance(v, (str, int, float, bool, type(None)))}
    described.setdefault('model_path', model or '(bundled default)')
    return {'path': described.get('model_path'), 'summary': segmenter.spec.summary(),
            'backend': described.get('backend', args.backend), 'details': described}


class Timing:
    """Per-stage latency samples of the core and the tool's overhead around the model."""

    def __init__(self) -> None:
        self.stages: Dict[str, List[float]] = {}
        self.model_ms: List[float] = []
        self.wall_s = 0.0

    def add(self, stage_ms: Dict[str, float], model_ms: float) -> None:
        """Record one frame: the core's stage timings and the measured process() time."""
        for stage, value in stage_ms.items():
            self.stages.setdefault(stage, []).append(float(value))
        self.model_ms.append(model_ms)

    @property
    def frames(self) -> int:
        """Return the number of segmented frames."""
        return len(self.model_ms)

    def merge(self, other: 'Timing') -> 'Timing':
        """Append another run's samples and add its wall time (a fleet of units); return self."""
        for stage, values in other.stages.items():
            self.stages.setdefault(stage, []).extend(values)
        self.model_ms.extend(other.model_ms)
        self.wall_s += other.wall_s
        return self

    def latency(self) -> Dict[str, Dict[str, float]]:
        """Return p50/p95/p99/mean per stage, ``segmenter`` being the whole process() call."""
        series = dict(self.stages)
        series['segmenter'] = self.model_ms
        result = {}
        for stage, values in series.items():
            if not values:
                continue
            array = np.asarray(values, np.float64)
            p = np.percentile(array, PERCENTILES)
            result[stage] = {'p50': float(p[0]), 'p95': float(p[1]), 'p99': float(p[2]),
                             'mean': float(array.mean()), 'count': int(array.size)}
        return result

    def throughput(self) -> Dict[str, Optional[float]]:
        """Return frames/s, model ms/frame and the overhead (ms/frame and % of model time)."""
        if not self.frames:
            return {'frames_per_second': None, 'segmenter_ms_per_frame': None,
                    'overhead_ms_per_frame': None, 'overhead_percent': None,
                    'wall_s': self.wall_s}
        model_s = sum(self.model_ms) / 1e3
        overhead_s = max(0.0, self.wall_s - model_s)
        return {'frames_per_second': self.frames / self.wall_s if self.wall_s else None,
                'segmenter_ms_per_frame': model_s * 1e3 / self.frames,
                'overhead_ms_per_frame': overhead_s * 1e3 / self.frames,
                'overhead_percent': 100.0 * overhead_s / model_s if model_s else None,
                'wall_s': self.wall_s}

    def summary_line(self) -> str:
        """Return the speed part of a tool's summary line."""
        numbers = self.throughput()
        if not self.frames:
            return 'no frames segmented'
        return (f'segmenter {numbers["segmenter_ms_per_frame"]:.1f} ms/frame, tool overhead '
                f'{numbers["overhead_ms_per_frame"]:.1f} ms/frame = '
                f'{numbers["overhead_percent"]:.1f} % of model time, '
                f'{numbers["frames_per_second"]:.1f} frames/s')


class SkipCounter:
    """Frames skipped, counted by reason, with the first message of each reason."""

    def __init__(self) -> None:
        self.counts: Dict[str, int] = {}
        self.examples: Dict[str, str] = {}

    def add(self, reason: str, message: str) -> None:
        """Count one skipped frame."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.examples.setdefault(reason, message)

    def merge(self, other: 'SkipCounter') -> 'SkipCounter':
        """Add another counter's counts (the earlier example of a reason stays); return self."""
        for reason, count in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + count
        for reason, message in other.examples.items():
            self.examples.setdefault(reason, message)
        return self

    @property
    def total(self) -> int:
        """Return the number of skipped frames."""
        return sum(self.counts.values())

    def text(self) -> str:
        """Return e.g. ``no_gt 2, gt_size_mismatch 1``."""
        return ', '.join(f'{reason} {count}' for reason, count in sorted(self.counts.items()))


def run_loop(jobs: Iterable[frames_module.FrameJob], segment: Callable[[Any], Any],
             handle: Callable[[frames_module.Frame, Any], Any],
             collect: Callable[[Any], None], skips: SkipCounter, timing: Timing,
             workers: int, total: Optional[int] = None, desc: str = 'frames',
             show_progress: bool = True) -> Optional[DataError]:
    """
    Decode jobs in a pool, segment each frame here, hand (frame, result) to a write pool.

    ``segment(frame)`` returns ``(result, timings_ms)`` and runs on this thread; its time is the
    model time. ``handle(frame, result)`` runs in the write pool and its return value goes to
    ``collect`` on this thread, in frame order. ``segment`` may return None to skip the frame
    silently (already counted). Sets ``timing.wall_s``. Returns the bag read error that ended
    the input early, if any, after everything read before it was written. ``show_progress``
    False hides the per-frame progress bar (a caller that shows one per work unit).
    """
    timing_start = time.perf_counter()
    decoded = frames_module.ordered_map(frames_module.decode, jobs, workers)
    pending: Deque[Future] = deque()
    depth = 2 * max(1, workers)
    source_error: Optional[DataError] = None
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix='write')
    progress = tqdm(total=total, desc=desc, unit='frame', disable=None if show_progress else True,
                    leave=False)
    try:
        try:
            for frame in decoded:
                progress.update(1)
                if frame.skip:
                    skips.add(frame.skip, frame.skip_message)
                    continue
                outcome = segment(frame)
                if outcome is None:
                    continue
                if workers <= 0:
                    collect(handle(frame, outcome))
                    continue
                pending.append(pool.submit(handle, frame, outcome))
                while len(pending) > depth:
                    collect(pending.popleft().result())
        except frames_module.bagio.BagReadError as error:
            source_error = error
        while pending:
            collect(pending.popleft().result())
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        progress.close()
    timing.wall_s = time.perf_counter() - timing_start
    return source_error


def timed_segment(segmenter: Any, timing: Timing, **options: Any) -> Callable[[Any], Any]:
    """
    Return a ``segment`` function for :func:`run_loop` that records model time in timing.

    The core returns new arrays on every call, so results can go to the write pool as they are.
    """
    def segment(frame: frames_module.Frame) -> Any:
        started = time.perf_counter()
        result = segmenter.process(frame.image, frame.encoding, **options)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        timing.add(dict(getattr(result, 'timings', {}) or {}), elapsed_ms)
        return result
    return segment


class UnitProgress:
    """
    A progress bar over work units (bags) with the frames/s so far and tqdm's ETA.

    ``advance(frames)`` counts one finished unit and the frames it scored.
    """

    def __init__(self, total: int, desc: str) -> None:
        self.frames = 0
        self.started = time.perf_counter()
        self.bar = tqdm(total=total, desc=desc, unit='bag', disable=None, leave=False,
                        dynamic_ncols=True)

    def advance(self, frames: int) -> None:
        """Count one finished unit that scored ``frames`` frames."""
        self.frames += frames
        elapsed = time.perf_counter() - self.started
        self.bar.set_postfix_str(f'{self.frames} frames, '
                                 f'{self.frames / elapsed if elapsed else 0.0:.1f} frames/s',
                                 refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Remove the bar."""
        self.bar.close()
