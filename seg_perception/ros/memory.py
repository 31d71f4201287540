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
Keep big message buffers in the heap (glibc ``mallopt``), as real-time ROS 2 nodes do.

Every 720p frame makes multi-megabyte buffers (the CDR serialization in rmw, the C message,
its Python copy). glibc serves blocks above ``M_MMAP_THRESHOLD`` with a fresh ``mmap`` and gives
them back on free, so each frame faults its buffers in page by page: measured here, serializing
one 1280x720 rgb8 Image took 5.3 ms, and 0.24 ms once the blocks stay in the heap. Raising the
mmap threshold and the trim threshold keeps freed blocks for the next frame, at the price of
the process keeping its peak heap. A user's own ``GLIBC_TUNABLES`` / ``MALLOC_*_`` settings win;
on a C library without ``mallopt`` nothing changes.
"""

import ctypes
import os
from typing import Mapping, Optional


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc caps the mmap threshold at 32 MiB on 64-bit (HEAP_MAX_SIZE / 2): an 8K rgb8 frame
# (99 MB) is still mapped, everything up to 4K rgb8 (25 MB) stays in the heap
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 256 << 20


def user_tuned(environ: Mapping[str, str]) -> bool:
    """Return True if the environment already tunes glibc malloc."""
    if 'glibc.malloc.' in environ.get('GLIBC_TUNABLES', ''):
        return True
    return any(key.startswith('MALLOC_') and key.endswith('_') for key in environ)


def keep_large_buffers(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Raise glibc's mmap and trim thresholds; return True if this process now uses them."""
    environ = os.environ if environ is None else environ
    if user_tuned(environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
