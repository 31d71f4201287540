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
A one-frame mailbox between the subscription callback and the inference worker.

The callback puts the newest frame; if the worker has not taken the previous one yet, that one
is replaced and counted as dropped. The worker always gets the newest frame, so latency does not
grow with the input rate.
"""

import threading
from typing import Generic, Optional, TypeVar


T = TypeVar('T')


class LatestFrameSlot(Generic[T]):
    """Hold at most one pending item; a newer put replaces (drops) the pending one."""

    def __init__(self) -> None:
        """Start empty and open."""
        self._condition = threading.Condition()
        self._item: Optional[T] = None
        self._closed = False
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Return how many pending items were replaced before the worker took them."""
        with self._condition:
            return self._dropped

    def put(self, item: T) -> bool:
        """Store item as the pending one; return True if it replaced (dropped) another."""
        with self._condition:
            replaced = self._item is not None
            if replaced:
                self._dropped += 1
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """Wait for the pending item and return it; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the worker for good and discard the pending item."""
        with self._condition:
            self._closed = True
            self._item = None
            self._condition.notify_all()

    def open(self) -> None:
        """Accept items again after close()."""
        with self._condition:
            self._closed = False
