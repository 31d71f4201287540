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
One-frame mailboxes between the camera subscriptions and the inference worker.

Each camera has one slot. A callback puts the camera's newest frame; if the worker has not taken
the previous one yet, that one is replaced and counted as dropped for that camera, so latency
does not grow with any camera's rate. The worker takes a batch: the pending frame of every
camera that has one (or, for a model that runs frames one at a time, that of the camera served
least recently: round robin, each camera with its newest frame). Before it takes, it may wait up
to a batch timeout for the cameras that are streaming (a frame within LIVE_PERIODS of their
usual interval) but have nothing pending yet, so that one backend call serves them all; a camera
that went silent is not waited for.
"""

import collections
import math
import statistics
import threading
import time
from typing import Callable, Deque, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar


T = TypeVar('T')
SINGLE = ''  # the name of the one camera of a single-camera node
LIVE_PERIODS = 2.0  # a camera is streaming while its last frame is younger than this x interval
INTERVALS_KEPT = 8  # arrival intervals per camera for its usual interval (median)


class CameraSlots(Generic[T]):
    """Hold at most one pending item per camera; a newer put replaces (drops) the pending one."""

    def __init__(self, cameras: Sequence[str] = (SINGLE,),
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Start empty and open, with one slot per camera name (in batch order)."""
        self._cameras = tuple(cameras)
        self._clock = clock
        self._condition = threading.Condition()
        self._items: Dict[str, T] = {}
        self._dropped = {name: 0 for name in self._cameras}
        self._last_put: Dict[str, float] = {}
        self._intervals: Dict[str, Deque[float]] = {
            name: collections.deque(maxlen=INTERVALS_KEPT) for name in self._cameras}
        self._last_taken: Dict[str, float] = {}
        self._closed = False

    @property
    def cameras(self) -> Tuple[str, ...]:
        """Return the camera names in batch order."""
        return self._cameras

    def dropped(self, camera: str = SINGLE) -> int:
        """Return how many of a camera's items were replaced before the worker took them."""
        with self._condition:
            return self._dropped[camera]

    def put(self, camera: str, item: T) -> bool:
        """Store item as the camera's pending one; return True if it replaced (dropped) one."""
        now = self._clock()
        with self._condition:
            replaced = camera in self._items
            if replaced:
                self._dropped[camera] += 1
            self._items[camera] = item
            last = self._last_put.get(camera)
            if last is not None:
                self._intervals[camera].append(now - last)
            self._last_put[camera] = now
            self._condition.notify_all()
            return replaced

    def _streaming(self, camera: str, now: float) -> bool:
        """Return whether a camera is expected to deliver soon (it has a usual interval)."""
        intervals = self._intervals[camera]
        if not intervals:
            return False
        return now - self._last_put[camera] < LIVE_PERIODS * statistics.median(intervals)

    def _awaited(self, now: float) -> List[str]:
        return [name for name in self._cameras
                if name not in self._items and self._streaming(name, now)]

    def take_batch(self, wait_for_others_s: float = 0.0, timeout: Optional[float] = None,
                   max_items: Optional[int] = None) -> Optional[List[Tuple[str, T]]]:
        """
        Wait for a pending item; return [(camera, item)] of the cameras with one.

        Once one item is pending, wait up to ``wait_for_others_s`` for the streaming cameras
        without one. The least recently served cameras come first; ``max_items`` takes only
        that many (the others stay pending, still replaced by newer frames): a worker that runs
        frames one at a time takes one per call, so the cameras are served in turn, each with
        its newest frame. Returns None on ``timeout`` or once closed.
        """
        with self._condition:
            self._condition.wait_for(lambda: bool(self._items) or self._closed, timeout)
            if self._closed or not self._items:
                return None
            if wait_for_others_s > 0:
                deadline = self._clock() + wait_for_others_s
                while not self._closed:
                    now = self._clock()
                    if now >= deadline or not self._awaited(now):
                        break
                    self._condition.wait(deadline - now)
                if self._closed:
                    return None
            # least recently served first (then list order): with max_items that is round robin
            order = sorted(self._items, key=lambda name: (self._last_taken.get(name, -math.inf),
                                                          self._cameras.index(name)))
            now = self._clock()
            batch = []
            for name in order[:max_items]:
                batch.append((name, self._items.pop(name)))
                self._last_taken[name] = now
            return batch

    def close(self) -> None:
        """Wake the worker for good and discard the pending items."""
        with self._condition:
            self._closed = True
            self._items.clear()
            self._condition.notify_all()

    def open(self) -> None:
        """Accept items again after close()."""
        with self._condition:
            self._closed = False
