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
Counters, rates and latency percentiles of the node, and the /diagnostics status they make.

Thread-safe: the subscription callback counts received frames, the inference worker records
latencies, the diagnostics timer reads a snapshot. Keys of the status are stable and documented
in docs/node.md (dotted snake case, units in the name).
"""

import collections
import threading
import time
from typing import Counter, Deque, Dict, Iterable, List, Mapping, Optional

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
import numpy as np


# Stages recorded per frame (ms). decode: message -> array; the core stages; grid: the
# ~/drivable_grid projection; publish: messages built and handed to DDS; total: frame taken by
# the worker -> last output published; stamp_to_labels / stamp_to_publish: camera stamp ->
# ~/labels published / last output published (ROS clock).
STAGES = ('queue', 'decode', 'preprocess', 'infer', 'postprocess', 'drivable', 'colorize',
          'grid', 'publish', 'total', 'stamp_to_labels', 'stamp_to_publish')
WINDOW = 300  # latency samples kept per stage (10 s at 30 Hz)
GAP_FACTOR = 1.5  # a stamp interval above GAP_FACTOR x the period means frames went missing
RATE_WARN_FRACTION = 0.8  # input rate below this fraction of expected_rate -> WARN


class NodeStats:
    """Everything /diagnostics reports, updated from several threads."""

    def __init__(self, window: int = WINDOW) -> None:
        """Start with zero counts; keep the last ``window`` latency samples per stage."""
        self._lock = threading.Lock()
        self._latency: Dict[str, Deque[float]] = {
            stage: collections.deque(maxlen=window) for stage in STAGES}
        self._intervals: Deque[float] = collections.deque(maxlen=window)
        self.received = 0
        self.published = 0
        self.rejected: Counter[str] = collections.Counter()
        self.outputs: Counter[str] = collections.Counter()
        self.lost_upstream = 0
        self.expected_rate = 0.0
        self._last_stamp: Optional[float] = None
        self._rate_mark = (time.monotonic(), 0, 0)
        self.last_error = ''

    def frame_received(self, stamp_s: float) -> None:
        """Count an arriving frame; estimate frames lost upstream from gaps in the stamps."""
        with self._lock:
            self.received += 1
            last, self._last_stamp = self._last_stamp, stamp_s
            if last is None or stamp_s <= last:
                return
            interval = stamp_s - last
            if self.expected_rate > 0:
                period = 1.0 / self.expected_rate
            elif len(self._intervals) >= 5:
                period = float(np.median(self._intervals))
            else:
                period = 0.0
            self._intervals.append(interval)
            if period > 0 and interval > GAP_FACTOR * period:
                self.lost_upstream += int(round(interval / period)) - 1

    def restart_stream(self) -> None:
        """Forget the last stamp: the next frame starts a new stream (no gap to the old one)."""
        with self._lock:
            self._last_stamp = None

    def frame_rejected(self, reason: str, message: str) -> None:
        """Count a frame rejected for a reason."""
        with self._lock:
            self.rejected[reason] += 1
            self.last_error = message

    def frame_published(self, timings_ms: Mapping[str, float], outputs: Iterable[str]) -> None:
        """Record the stage latencies of a published frame and which outputs it went to."""
        with self._lock:
            self.published += 1
            self.outputs.update(outputs)
            for stage, value in timings_ms.items():
                if stage in self._latency:
                    self._latency[stage].append(float(value))

    def percentiles(self, stage: str) -> Optional[tuple]:
        """Return (p50, p99) of a stage in ms, or None without samples."""
        with self._lock:
            samples = list(self._latency[stage])
        if not samples:
            return None
        p50, p99 = np.percentile(samples, [50, 99])
        return float(p50), float(p99)

    def rates(self) -> tuple:
        """Return (input Hz, output Hz) since the previous call."""
        now = time.monotonic()
        with self._lock:
            then, received, published = self._rate_mark
            self._rate_mark = (now, self.received, self.published)
            elapsed = max(now - then, 1e-6)
            return (self.received - received) / elapsed, (self.published - published) / elapsed

    def values(self, dropped: int) -> Dict[str, str]:
        """Return the key/values of the status (rates reset their window)."""
        input_rate, output_rate = self.rates()
        with self._lock:
            values = {
                'input_rate_hz': f'{input_rate:.2f}',
                'output_rate_hz': f'{output_rate:.2f}',
                'expected_rate_hz': f'{self.expected_rate:.2f}',
                'frames_received': str(self.received),
                'frames_published': str(self.published),
                'frames_dropped_busy': str(dropped),
                'frames_lost_upstream': str(self.lost_upstream),
                'frames_rejected': str(sum(self.rejected.values())),
            }
            for reason, count in sorted(self.rejected.items()):
                values[f'rejected.{reason}'] = str(count)
            for output, count in sorted(self.outputs.items()):
                values[f'published.{output}'] = str(count)
            if self.last_error:
                values['last_error'] = self.last_error
        for stage in STAGES:
            result = self.percentiles(stage)
            if result is not None:
                values[f'latency.{stage}.p50_ms'] = f'{result[0]:.2f}'
                values[f'latency.{stage}.p99_ms'] = f'{result[1]:.2f}'
        return values


def level_and_message(values: Mapping[str, str], active: bool, rejected_before: int) -> tuple:
    """Return (level, summary) of the status from its values."""
    if not active:
        return DiagnosticStatus.WARN, 'inactive'
    problems: List[str] = []
    expected = float(values['expected_rate_hz'])
    input_rate = float(values['input_rate_hz'])
    if expected > 0 and input_rate < RATE_WARN_FRACTION * expected:
        problems.append(f'input {input_rate:.1f} Hz below expected {expected:.1f} Hz')
    if int(values['frames_rejected']) > rejected_before:
        problems.append('rejecting input frames (see rejected.*, last_error)')
    if problems:
        return DiagnosticStatus.WARN, '; '.join(problems)
    if int(values['frames_received']) == 0:
        return DiagnosticStatus.OK, 'waiting for images'
    return DiagnosticStatus.OK, 'ok'


def make_status(name: str, hardware_id: str, level: bytes, message: str,
                values: Mapping[str, str]) -> DiagnosticStatus:
    """Build a DiagnosticStatus from plain values."""
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
