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
The TensorRT engine cache: an ONNX model's engine is built once per key and reused after that.

The key is everything an engine depends on: the ONNX file's sha256, the TensorRT version, the
GPU name and compute capability, the precision asked for, the input shape and batch profile
(:func:`batch_profile`: for a dynamic batch ``(1, B, B)``, B the caller's ``max_batch``, so
another ``max_batch`` is another engine), and the DLA core. An entry is
``<stem>-<digest>.engine`` plus ``<stem>-<digest>.json`` (the key fields, the engine's size and
sha256, the build time and the precision the engine really runs). Both are written atomically
(a hidden sibling renamed into place), the sidecar last, so an entry without a valid sidecar
does not exist. Builds of one key are serialized by a lock file, so two nodes starting on one
cache build once: the second waits, then finds the entry. An entry whose engine does not match
its sidecar (a truncated or replaced file) is removed and rebuilt; so is one TensorRT refuses
to deserialize (the caller reports it with :meth:`EngineCache.invalidate`).
"""

from dataclasses import asdict, dataclass, field
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from seg_perception.core.atomic import write_bytes
from seg_perception.core.errors import BackendError, one_line

LOGGER = logging.getLogger('seg_perception')
DEFAULT_CACHE_DIR = os.path.join('~', '.cache', 'seg_perception', 'engines')
PROGRESS_PERIOD_S = 10.0
KEY_VERSION = 1  # bump when the meaning of a field changes
CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def batch_profile(input_shape: Sequence[Any], max_batch: int = 0) -> Tuple[int, int, int]:
    """
    Return the (min, opt, max) batch an engine is built for.

    A dynamic batch (dim 0 None) gets ``(1, B, B)`` with ``B = max(1, max_batch)``: tuned for
    the full batch the caller will pass, still taking fewer. A fixed batch has no profile and
    ``max_batch`` cannot change its engine: ``(1, 1, 1)`` (the input shape holds the batch).
    """
    if list(input_shape[:1]) == [None]:
        largest = max(1, int(max_batch))
        return 1, largest, largest
    return 1, 1, 1


@dataclass(frozen=True)
class EngineKey:
    """What an engine depends on; two equal keys may share one engine."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: Tuple[Any, ...]
    batch_profile: Tuple[int, int, int] = (1, 1, 1)  # min, opt, max batch
    dla_core: int = -1  # -1 = the GPU
    key_version: int = KEY_VERSION

    @classmethod
    def for_model(cls, input_shape: Sequence[Any], max_batch: int = 0,
                  **fields: Any) -> 'EngineKey':
        """Return the key of an engine built for ``max_batch`` (the batch profile follows it)."""
        return cls(input_shape=tuple(input_shape),
                   batch_profile=batch_profile(input_shape, max_batch), **fields)

    def fields(self) -> Dict[str, Any]:
        """Return the key as a JSON-friendly dict, tuples as lists."""
        return json.loads(json.dumps(asdict(self)))

    def digest(self) -> str:
        """Return a stable 24-hex-digit digest of every field (the same in every process)."""
        text = json.dumps(self.fields(), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class CacheEntry:
    """A cached engine: its file, sidecar and the facts the sidecar records."""

    engine_path: str
    sidecar_path: str
    info: Dict[str, Any] = field(default_factory=dict)


class EngineCache:
    """Engines of one cache folder, looked up and stored by :class:`EngineKey`."""

    def __init__(self, folder: str = '') -> None:
        self.folder = os.path.abspath(os.path.expanduser(folder or DEFAULT_CACHE_DIR))

    def paths(self, stem: str, key: EngineKey) -> Tuple[str, str]:
        """Return (engine, sidecar) paths of a key for a model named ``stem``."""
        base = os.path.join(self.folder, f'{stem}-{key.digest()}')
        return base + '.engine', base + '.json'

    def lookup(self, stem: str, key: EngineKey) -> Optional[CacheEntry]:
        """Return the valid entry of a key, or None; a broken entry is removed and logged."""
        engine_path, sidecar_path = self.paths(stem, key)
        if not os.path.exists(sidecar_path):
            return None
        problem = ''
        try:
            with open(sidecar_path, encoding='utf-8') as stream:
                info = json.load(stream)
            if not isinstance(info, dict) or info.get('key') != key.fields():
                problem = 'its sidecar records another key'
            elif not os.path.isfile(engine_path):
                problem = 'the engine file is missing'
            elif os.path.getsize(engine_path) != info.get('engine_bytes'):
                problem = (f'the engine has {os.path.getsize(engine_path)} bytes, the sidecar '
                           f'says {info.get("engine_bytes")}')
            elif file_sha256(engine_path) != info.get('engine_sha256'):
                problem = 'the engine does not match the sha256 its sidecar records'
        except (OSError, ValueError) as error:
            problem = f'unreadable ({one_line(error)})'
            info = {}
        if problem:
            LOGGER.warning('engine cache: %s: %s; it is removed and rebuilt', engine_path,
                           problem)
            self.remove(stem, key)
            return None
        return CacheEntry(engine_path, sidecar_path, info)

    def store(self, stem: str, key: EngineKey, engine: bytes,
              details: Optional[Dict[str, Any]] = None) -> CacheEntry:
        """Write an engine and then its sidecar, each atomically; return the entry."""
        engine_path, sidecar_path = self.paths(stem, key)
        info = {'key': key.fields(), 'engine_bytes': len(engine),
                'engine_sha256': hashlib.sha256(engine).hexdigest(),
                'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'), **(details or {})}
        try:
            write_bytes(engine_path, engine)
            write_bytes(sidecar_path, (json.dumps(info, indent=1) + '\n').encode())
        except OSError as error:
            raise BackendError(f'engine cache {self.folder}: cannot write {engine_path} '
                               f'({error.strerror or error})') from None
        return CacheEntry(engine_path, sidecar_path, info)

    def remove(self, stem: str, key: EngineKey) -> None:
        """Delete an entry (sidecar first, so the entry stops existing at once)."""
        for path in reversed(self.paths(stem, key)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def invalidate(self, entry: CacheEntry, reason: str, stem: str, key: EngineKey) -> None:
        """Drop an entry TensorRT could not use, saying why."""
        LOGGER.warning('engine cache: %s: %s; it is removed and rebuilt', entry.engine_path,
                       reason)
        self.remove(stem, key)

    def get_or_build(self, stem: str, key: EngineKey,
                     build: Callable[[], Tuple[bytes, Dict[str, Any]]],
                     progress_period: float = PROGRESS_PERIOD_S) -> Tuple[CacheEntry, bool]:
        """
        Return (entry, built): the cached engine of a key, built under the key's lock on a miss.

        ``build()`` returns the serialized engine and details for the sidecar (such as the
        precision it really runs). A progress line is logged every ``progress_period`` seconds
        while it runs, and the build time at the end.
        """
        entry = self.lookup(stem, key)
        if entry is not None:
            return entry, False
        try:
            os.makedirs(self.folder, exist_ok=True)
            lock = open(os.path.join(self.folder, f'.{stem}-{key.digest()}.lock'), 'a')
        except OSError as error:
            raise BackendError(f'engine cache {self.folder}: not writable '
                               f'({error.strerror or error}); set engine_cache_dir') from None
        with lock:
            waited = time.monotonic()
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building this key
            entry = self.lookup(stem, key)
            if entry is not None:
                LOGGER.info('engine cache: %s was built by another process (waited %.1f s)',
                            entry.engine_path, time.monotonic() - waited)
                return entry, False
            engine, details = run_with_progress(build, f'building the TensorRT engine for '
                                                f'{stem} ({key.precision})', progress_period)
            return self.store(stem, key, engine, details), True


def run_with_progress(work: Callable[[], Any], what: str, period: float) -> Any:
    """Run ``work()``, logging '<what>: N s' every ``period`` seconds and the total at the end."""
    done = threading.Event()
    started = time.monotonic()

    def report() -> None:
        while not done.wait(period):
            LOGGER.info('%s: %.0f s so far', what, time.monotonic() - started)

    reporter = threading.Thread(target=report, name='engine-build-progress', daemon=True)
    reporter.start()
    try:
        result = work()
    finally:
        done.set()
        reporter.join()
    LOGGER.info('%s: done in %.1f s', what, time.monotonic() - started)
    return result
