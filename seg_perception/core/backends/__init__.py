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
Inference backends by name, imported only when used.

``create_backend('auto', 'model.onnx')`` picks TensorRT for ``.engine``/``.plan`` files, torch
for ``.pt``/``.pth``/``.pt2`` files, and for an ONNX model TensorRT (which builds and caches an
engine) where TensorRT and an NVIDIA GPU are present, else ONNX Runtime; when TensorRT cannot
take the model, ``auto`` falls back to ONNX Runtime and logs why. An unknown name lists the
choices; a backend whose library is missing raises BackendError saying what to install.
"""

import importlib
import importlib.util
import logging
import os
from typing import Dict, List, Tuple

from seg_perception.core.backends.base import Backend
from seg_perception.core.errors import BackendError, ModelLoadError, one_line

LOGGER = logging.getLogger('seg_perception')


BACKENDS: Dict[str, str] = {
    'onnxruntime': 'seg_perception.core.backends.onnxruntime:OnnxRuntimeBackend',
    'tensorrt': 'seg_perception.core.backends.tensorrt:TensorRTBackend',
    'torch': 'seg_perception.core.backends.torch_backend:TorchBackend',
}
# the Python modules each backend needs, to tell what is installed without importing it
REQUIREMENTS: Dict[str, Tuple[str, ...]] = {
    'onnxruntime': ('onnxruntime',),
    'tensorrt': ('tensorrt', 'cuda'),
    'torch': ('torch',),
}
ENGINE_SUFFIXES = ('.engine', '.plan')
TORCH_SUFFIXES = ('.pt', '.pth', '.pt2')
CHOICES = ('auto',) + tuple(BACKENDS)
# keyword arguments every backend takes
OPTIONS = ('device', 'precision', 'num_threads', 'engine_cache_dir', 'trust_code', 'max_batch')

__all__ = ['BACKENDS', 'Backend', 'CHOICES', 'available_backends', 'create_backend',
           'resolve_backend_name']


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_backends() -> List[str]:
    """Return the backend names whose libraries are installed (not necessarily usable)."""
    return [name for name, modules in REQUIREMENTS.items() if all(map(_installed, modules))]


def resolve_backend_name(name: str, model_path: str) -> str:
    """Return the concrete backend for a name, resolving ``auto`` from the file suffix."""
    if name not in CHOICES:
        raise BackendError(f'unknown backend {name!r}; choose one of {list(CHOICES)}')
    if name != 'auto':
        return name
    suffix = os.path.splitext(model_path or '')[1].lower()
    if suffix in ENGINE_SUFFIXES:
        return 'tensorrt'
    if suffix in TORCH_SUFFIXES:
        return 'torch'
    return 'onnxruntime'


def backend_class(name: str) -> type:
    """Import and return the class registered under a concrete backend name."""
    if name not in BACKENDS:
        raise BackendError(f'unknown backend {name!r}; choose one of {list(CHOICES)}')
    module_name, _, class_name = BACKENDS[name].partition(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendError(f'backend {name!r} cannot be imported ({error})') from None
    return getattr(module, class_name)


def tensorrt_unavailable() -> str:
    """Return why TensorRT cannot run here ('' when its libraries and a GPU are present)."""
    missing = [module for module in REQUIREMENTS['tensorrt'] if not _installed(module)]
    if missing:
        return f'{" and ".join(missing)} not installed'
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as error:
            return f'the CUDA runtime bindings are not importable ({error})'
    error, count = cudart.cudaGetDeviceCount()
    if int(error) != 0 or count < 1:
        return 'no NVIDIA GPU is visible'
    return ''


def create_backend(name: str, model_path: str, **options: object) -> Backend:
    """
    Load ``model_path`` with the named backend (or ``auto``) and return it.

    ``options`` are the backend's keyword arguments: ``device``, ``precision``, ``num_threads``,
    ``engine_cache_dir``, ``trust_code`` (load code-carrying torch files: TorchScript, .pt2),
    ``max_batch`` (the largest batch the caller will pass, 0 = not said; TensorRT builds its
    batch profile for it). The backend's ``max_batch`` attribute is the largest batch it takes
    (None = any). Unknown options raise BackendError.
    """
    concrete = resolve_backend_name(name, model_path)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise BackendError(f'backend {concrete!r}: unknown option(s) {unknown}; known: '
                           f'{list(OPTIONS)}')
    if name == 'auto' and concrete == 'onnxruntime' and model_path.lower().endswith('.onnx'):
        reason = tensorrt_unavailable()
        if not reason:
            try:
                return backend_class('tensorrt')(model_path, **options)
            except (BackendError, ModelLoadError) as error:
                reason = one_line(error)
            LOGGER.warning('backend auto: TensorRT cannot run %s (%s); using ONNX Runtime',
                           model_path, reason)
        else:
            LOGGER.info('backend auto: ONNX Runtime for %s (TensorRT: %s)', model_path, reason)
    return backend_class(concrete)(model_path, **options)
