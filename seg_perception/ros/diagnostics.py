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
from typing import Callable, Counter, Deque, Dict, Iterable, List, Mapping, Optional

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
import numpy as np


# Stages recorded per frame (ms). decode: message -> array; the core stages; grid: the
# ~/drivable_grid projection; publish: messages built and handed to DDS; total: frame taken by
# the worker -> last output published; stamp_to_labels / stamp_to_publish: camera stamp ->
# ~/labels published / last output published (ROS clock).
# The node's status is named '<node fqn>: segmentation', a camera's '<node fqn>: segmentation <c>'.
STATUS_NAME = 'segmentation'
STAGES = ('queue', 'decode', 'preprocess', 'infer', 'postprocess', 'drivable', 'colorize',
          'grid', 'publish', 'total', 'stamp_to_labels', 'stamp_to_publish')
WINDOW = 300  # latency samples kept per stage (10 s at 30 Hz)
GAP_FACTOR = 1.5  # a stamp interval above GAP_FACTOR x the period means frames went missing
RATE_WARN_FRACTION = 0.8  # input rate below this fraction of expected_rate -> WARN
# Publishers on the input but no frame for max(SILENCE_MIN_S, SILENCE_PERIODS x the period):
# WARN. DDS drops frames it cannot carry (too large for the transport, see docs/node.md) without
# telling the subscriber, so a silent matched publisher is the one sign of them.
SILENCE_MIN_S = 3.0
SILENCE_PERIODS = 5.0


class NodeStats:
    """Everything /diagnostics reports, updated from several threads."""

    def __init__(self, window: int = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Start with zero counts; keep the last ``window`` latency samples per stage."""
        self._lock = threading.Lock()
        self._clock = clock
        self._latency: Dict[str, Deque[float]] = {
            stage: collections.deque(maxlen=window) for stage in STAGES}
        self._intervals: Deque[float] = collections.deque(maxlen=window)
        self.received = 0
        self.published = 0
        self.rejected: Counter[str] = collections.Counter()
        self.outputs: Counter[str] = collections.Counter()
        self.lost_upstream = 0
        self.lost_in_transport = 0
        self.expected_rate = 0.0
        self._last_stamp: Optional[float] = None
        self._rate_mark = (clock(), 0, 0)
        self._publishers = 0
        self._quiet_since = clock()  # last frame, activation or first publisher, latest of them
        self.last_error = ''

    def frame_received(self, stamp_s: float) -> None:
        """
        Count an arriving frame; count frames lost upstream from gaps in the stamps.

        Only at a known ``expected_rate``: a gap in the stamps of a camera of known rate is lost
        frames, but the stamps of a bursty or stalling publisher have gaps that lose nothing, so
        without a rate only the intervals are recorded (reported as ``stamp_interval.*``).
        """
        with self._lock:
            self.received += 1
            self._quiet_since = self._clock()
            last, self._last_stamp = self._last_stamp, stamp_s
            if last is None or stamp_s <= last:
                return
            interval = stamp_s - last
            self._intervals.append(interval)
            if self.expected_rate > 0:
                period = 1.0 / self.expected_rate
                if interval > GAP_FACTOR * period:
                    self.lost_upstream += int(round(interval / period)) - 1

    def frames_lost_in_transport(self, count: int) -> None:
        """Count samples DDS reports lost between the publisher and the node (message_lost)."""
        with self._lock:
            self.lost_in_transport += max(0, int(count))

    def input_publishers(self, count: int) -> None:
        """Record how many publishers the input topic has; silence counts from the first one."""
        with self._lock:
            if count > 0 and self._publishers == 0:
                self._quiet_since = max(self._quiet_since, self._clock())
            self._publishers = max(0, int(count))

    def restart_stream(self) -> None:
        """Forget the last stamp: the next frame starts a new stream (no gap to the old one)."""
        with self._lock:
            self._last_stamp = None
            self._quiet_since = self._clock()

    def silence_limit(self) -> float:
        """Return how long the input may be silent with a publisher before it is flagged (s)."""
        with self._lock:
            if self.expected_rate > 0:
                period = 1.0 / self.expected_rate
            else:
                period = float(np.median(self._intervals)) if self._intervals else 0.0
        return max(SILENCE_MIN_S, SILENCE_PERIODS * period)

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
        now = self._clock()
        with self._lock:
            then, received, published = self._rate_mark
            self._rate_mark = (now, self.received, self.published)
            elapsed = max(now - then, 1e-6)
            return (self.received - received) / elapsed, (self.published - published) / elapsed

    def values(self, dropped: int) -> Dict[str, str]:
        """Return the key/values of the status (rates reset their window)."""
        input_rate, output_rate = self.rates()
        silence_limit = self.silence_limit()
        with self._lock:
            values = {
                'input_rate_hz': f'{input_rate:.2f}',
                'output_rate_hz': f'{output_rate:.2f}',
                'expected_rate_hz': f'{self.expected_rate:.2f}',
                'frames_received': str(self.received),
                'frames_published': str(self.published),
                'frames_dropped_busy': str(dropped),
                'frames_lost_in_transport': str(self.lost_in_transport),
                'frames_rejected': str(sum(self.rejected.values())),
                'input_publishers': str(self._publishers),
            }
            if self.expected_rate > 0:
                values['frames_lost_upstream'] = str(self.lost_upstream)
            if self._publishers:
                values['input_silence_s'] = f'{self._clock() - self._quiet_since:.1f}'
                values['input_silence_limit_s'] = f'{silence_limit:.1f}'
            if self._intervals:
                intervals = np.asarray(self._intervals) * 1e3
                values['stamp_interval.p50_ms'] = f'{np.median(intervals):.2f}'
                values['stamp_interval.max_ms'] = f'{intervals.max():.2f}'
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


class BatchStats:
    """What the cameras of a multi-camera node share: frames per backend call, its time."""

    def __init__(self, window: int = WINDOW) -> None:
        """Start with no calls; keep the last ``window`` inference times."""
        self._lock = threading.Lock()
        self._sizes: Counter[int] = collections.Counter()
        self._infer_ms: Deque[float] = collections.deque(maxlen=window)
        self._frames_together: Deque[int] = collections.deque(maxlen=window)

    def record(self, call_sizes: Iterable[int], infer_ms: Iterable[float]) -> None:
        """Record one worker cycle: the frames of each backend call and each call's time."""
        sizes = list(call_sizes)
        with self._lock:
            self._sizes.update(sizes)
            self._infer_ms.extend(float(value) for value in infer_ms)
            self._frames_together.append(sum(sizes))

    def values(self) -> Dict[str, str]:
        """Return the key/values of the shared status."""
        with self._lock:
            calls = sum(self._sizes.values())
            frames = sum(size * count for size, count in self._sizes.items())
            values = {'inference_calls': str(calls),
                      'batch_size.mean': f'{frames / calls:.2f}' if calls else '0.00',
                      'batch_size.histogram': ' '.join(
                          f'{size}:{count}' for size, count in sorted(self._sizes.items()))}
            if self._frames_together:
                values['frames_per_cycle.mean'] = f'{np.mean(self._frames_together):.2f}'
            samples = list(self._infer_ms)
        if samples:
            p50, p99 = np.percentile(samples, [50, 99])
            values['latency.inference_call.p50_ms'] = f'{p50:.2f}'
            values['latency.inference_call.p99_ms'] = f'{p99:.2f}'
        return values


def level_and_message(values: Mapping[str, str], active: bool, rejected_before: int,
                      lost_in_transport_before: Optional[int] = None) -> tuple:
    """
    Return (level, summary) of the status from its values.

    ``rejected_before`` and ``lost_in_transport_before`` are the counts of the previous status:
    new rejected or lost frames since then make a WARN.
    """
    if not active:
        return DiagnosticStatus.WARN, 'inactive'
    problems: List[str] = []
    expected = float(values['expected_rate_hz'])
    input_rate = float(values['input_rate_hz'])
    if expected > 0 and input_rate < RATE_WARN_FRACTION * expected:
        problems.append(f'input {input_rate:.1f} Hz below expected {expected:.1f} Hz')
    if int(values['frames_rejected']) > rejected_before:
        problems.append('rejecting input frames (see rejected.*, last_error)')
    lost = int(values.get('frames_lost_in_transport', 0))
    if lost_in_transport_before is not None and lost > lost_in_transport_before:
        problems.append(f'DDS lost {lost - lost_in_transport_before} input frame(s) on the way '
                        '(frames_lost_in_transport; too large for the transport?)')
    silence = float(values.get('input_silence_s', 0.0))
    if silence > float(values.get('input_silence_limit_s', SILENCE_MIN_S)):
        publishers = int(values['input_publishers'])
        problems.append(f'no input for {silence:.1f} s although {publishers} publisher'
                        f'{"s are" if publishers > 1 else " is"} on the topic (stopped, or its '
                        'frames are too large for the DDS transport)')
    if problems:
        return DiagnosticStatus.WARN, '; '.join(problems)
    if int(values['frames_received']) == 0:
        return DiagnosticStatus.OK, 'waiting for images'
    return DiagnosticStatus.OK, 'ok'


def status_name(node_fqn: str, camera: str = '') -> str:
    """Return the name of the node's status, or of one camera's."""
    return f'{node_fqn}: {STATUS_NAME}' + (f' {camera}' if camera else '')


def make_status(name: str, hardware_id: str, level: bytes, message: str,
                values: Mapping[str, str]) -> DiagnosticStatus:
    """Build a DiagnosticStatus from plain values."""
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
