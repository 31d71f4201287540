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

"""The interface every inference backend implements, and checks they share."""

from abc import ABC, abstractmethod
import logging
import os
from typing import Dict, Optional, Tuple

import numpy as np

from seg_perception.core.errors import BackendError, ModelLoadError


LOGGER = logging.getLogger('seg_perception')
PRECISIONS = ('fp32', 'fp16', 'int8')


class Backend(ABC):
    """
    One loaded model that maps an input tensor to its first output.

    Attributes set by every implementation: ``name`` (registry name), ``provider`` (what runs it,
    e.g. ``CPUExecutionProvider``, ``TensorRT``, ``torch-cuda:0``), ``precision`` (what it runs
    at, or ``as-exported`` when the file decides), ``input_name``, ``input_shape`` (None for
    dynamic dimensions), ``input_dtype`` (``'uint8'`` or ``'float32'``) and ``max_batch``: the
    largest batch (input dim 0) ``infer`` takes, or None when any batch runs. A caller serving
    several cameras splits its batches to that size.
    """

    name: str = 'base'

    def __init__(self, model_path: str) -> None:
        self.model_path = model_path
        self.provider = ''
        self.precision = 'fp32'
        self.input_name = ''
        self.input_shape: Tuple[Optional[int], ...] = ()
        self.input_dtype = 'float32'
        self.max_batch: Optional[int] = None

    @abstractmethod
    def metadata(self) -> Dict[str, str]:
        """Return the key/value metadata of the model file (where the ModelSpec JSON lives)."""

    @abstractmethod
    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Run the model on one input tensor; return its first output as a numpy array."""

    def close(self) -> None:
        """Release the model and any device memory; the backend is unusable afterwards."""

    def describe(self) -> Dict[str, str]:
        """Return what runs the model, for logs and diagnostics."""
        return {'backend': self.name, 'provider': self.provider, 'precision': self.precision,
                'model_path': self.model_path,
                'input': f'{self.input_name} {list(self.input_shape)} {self.input_dtype}',
                'max_batch': 'any' if self.max_batch is None else str(self.max_batch)}

    def set_max_batch(self, limit: Optional[int], asked: int) -> None:
        """
        Record the largest batch ``infer`` takes (None = any).

        When the caller said it will pass larger batches (``asked``, the ``max_batch`` option), one
        warning says so: the model cannot grow, so the caller has to split its batches.
        """
        self.max_batch = limit
        if limit is not None and asked > limit:
            LOGGER.warning('%s: %s takes batches of at most %d, max_batch %d was asked for; '
                           'larger batches must be split', self.name, self.model_path, limit,
                           asked)

    def __enter__(self) -> 'Backend':
        """Return self, so a backend can be used in a ``with`` block."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the backend."""
        self.close()


def check_model_file(path: str, kind: str = 'model') -> str:
    """Return the path if it names a non-empty readable file, else raise ModelLoadError."""
    if not path:
        raise ModelLoadError(f'no {kind} file given')
    if not os.path.exists(path):
        raise ModelLoadError(f'{path}: {kind} file not found')
    if not os.path.isfile(path):
        raise ModelLoadError(f'{path}: is not a file')
    if os.path.getsize(path) == 0:
        raise ModelLoadError(f'{path}: {kind} file is empty')
    if not os.access(path, os.R_OK):
        raise ModelLoadError(f'{path}: {kind} file is not readable')
    return path


def check_precision(precision: str) -> str:
    """Return the precision if known, else raise BackendError listing the choices."""
    if precision not in PRECISIONS:
        raise BackendError(f'unknown precision {precision!r}; choose one of {list(PRECISIONS)}')
    return precision


def check_count(name: str, value: int, zero_means: str) -> int:
    """Return an option that counts something if it is an integer >= 0, else raise naming it."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise BackendError(f'{name} must be an integer >= 0 (0 = {zero_means}), got {value!r}')
    return int(value)


def check_num_threads(num_threads: int) -> int:
    """Return the thread count if it is an integer >= 0 (0 = library default), else raise."""
    return check_count('num_threads', num_threads, 'library default')


def check_max_batch(max_batch: int) -> int:
    """Return the caller's largest batch if it is an integer >= 0 (0 = not said), else raise."""
    return check_count('max_batch', max_batch, 'not said')


def batch_limit(dim: object) -> Optional[int]:
    """Return a fixed batch dimension (a positive int), or None for a dynamic one."""
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim > 0:
        return int(dim)
    return None


def make_cache_dir(path: str, what: str = 'engine_cache_dir') -> str:
    """Create the cache folder ``path`` if needed ('' = no cache); failures raise BackendError."""
    if not isinstance(path, (str, os.PathLike)):
        raise BackendError(f'{what} must be a folder path, got {type(path).__name__} {path!r}')
    if path:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise BackendError(f'{what} {os.fspath(path)}: cannot create the folder '
                               f'({error.strerror or error})') from None
    return os.fspath(path)


def parse_device(device: str) -> Tuple[str, int]:
    """
    Parse a device string into (kind, index).

    ``''`` -> ('auto', 0): the best available; ``'cpu'``; ``'cuda'``, ``'cuda:1'``, ``'gpu'`` or
    a bare index ``'1'`` -> ('cuda', index). Anything else raises BackendError.
    """
    if device is not None and not isinstance(device, str):
        raise BackendError(f'device must be a string such as "cpu" or "cuda:0", got '
                           f'{type(device).__name__} {device!r}')
    text = (device or '').strip().lower()
    if text in ('', 'auto'):
        return 'auto', 0
    if text == 'cpu':
        return 'cpu', 0
    if text.isdigit():
        return 'cuda', int(text)
    kind, _, index = text.partition(':')
    if kind in ('cuda', 'gpu') and (not index or index.isdigit()):
        return 'cuda', int(index or 0)
    raise BackendError(f'unknown device {device!r}; use "" (auto), "cpu", "cuda" or "cuda:N"')
