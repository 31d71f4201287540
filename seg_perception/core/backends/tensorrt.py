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
TensorRT backend: run an engine with the named-tensor API; build it first from an ONNX model.

Given an ``.onnx``, the engine comes from the engine cache (:mod:`.engine_cache`, folder
``engine_cache_dir``, default ``~/.cache/seg_perception/engines``): looked up by a key of the
ONNX sha256, the TensorRT version, the GPU and its compute capability, the precision, the input
shape and batch profile and the DLA core, built on a miss (progress logged every 10 s), and
rebuilt when the cached file is broken or TensorRT refuses it. The spec is the ONNX's own
metadata. Given an ``.engine``/``.plan``, the spec comes from the sidecar ``<engine>.yaml``.

Batches: an ONNX with a dynamic batch is built with the profile (1, B, B), B = ``max_batch``
(at least 1), so one engine serves B cameras per call; a prebuilt engine takes what its first
profile allows. ``max_batch`` (the attribute) is that limit; asking for more logs a warning.

Needs the ``tensorrt`` package and the CUDA runtime bindings of ``cuda-python``
(``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases); torch is not used. Device
buffers are allocated once per I/O tensor; each call copies the input host -> device, runs
``execute_async_v3`` on a private stream and copies the first output back. An engine carries no
ModelSpec: it comes from the sidecar ``<engine>.yaml`` (``seg-perception build-engine`` writes
it). Missing libraries or no GPU raise BackendError with what to install.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from seg_perception.core.backends.base import (Backend, check_max_batch, check_model_file,
                                               check_num_threads, check_precision, parse_device)
from seg_perception.core.backends.engine_cache import EngineCache, EngineKey, file_sha256
from seg_perception.core.backends.tensorrt_build import (build_serialized_engine, BuildOptions,
                                                         check_precision_for_model,
                                                         onnx_summary)
from seg_perception.core.errors import BackendError, ModelLoadError, one_line

LOGGER = logging.getLogger('seg_perception')
ONNX_SUFFIX = '.onnx'


INSTALL_HINT = ('pip install "seg_perception[tensorrt]" (tensorrt and cuda-python) on a machine '
                'with an NVIDIA GPU and driver')


def import_tensorrt() -> Tuple[Any, Any]:
    """Return the ``tensorrt`` module and the CUDA runtime bindings, or raise BackendError."""
    try:
        import tensorrt as trt
    except ImportError as error:
        raise BackendError(f'tensorrt backend: the tensorrt Python package is not importable '
                           f'({one_line(error)}); {INSTALL_HINT}') from None
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as error:
            raise BackendError(f'tensorrt backend: the CUDA runtime bindings (cuda-python) are '
                               f'not importable ({one_line(error)}); {INSTALL_HINT}') from None
    return trt, cudart


def engine_batch_limit(engine: Any, input_name: str) -> Optional[int]:
    """
    Return the largest batch an engine's input takes: its fixed dim 0, else profile 0's max.

    Profile 0 because an execution context uses it unless told otherwise; TensorRT 10's
    ``get_tensor_profile_shape`` returns its (min, opt, max) shapes.
    """
    shape = tuple(engine.get_tensor_shape(input_name))
    if not shape:
        return None
    if shape[0] > 0:
        return int(shape[0])
    return int(engine.get_tensor_profile_shape(input_name, 0)[2][0])


class TensorRTBackend(Backend):
    """Run a serialized TensorRT engine (``.engine``/``.plan``) on one GPU."""

    name = 'tensorrt'

    def __init__(self, model_path: str, device: str = '', precision: str = 'fp32',
                 num_threads: int = 0, engine_cache_dir: str = '',
                 trust_code: bool = False,  # an engine carries no Python code
                 max_batch: int = 0) -> None:
        super().__init__(model_path)
        check_precision(precision)
        check_num_threads(num_threads)  # unused by TensorRT, but a bad value is a mistake
        max_batch = check_max_batch(max_batch)
        kind, index = parse_device(device)
        if kind == 'cpu':
            raise BackendError('tensorrt backend: device "cpu" is not possible; use '
                               'onnxruntime for CPU inference')
        self._trt, self._cudart = import_tensorrt()
        check_model_file(model_path, 'ONNX model or TensorRT engine')
        self._buffers: List[Any] = []
        self._stream = None
        self._metadata: Dict[str, str] = {}
        self._check(self._cudart.cudaSetDevice(index), f'select GPU {index}')
        trt = self._trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.build_info: Dict[str, Any] = {}
        if model_path.lower().endswith(ONNX_SUFFIX):
            engine = self._engine_from_onnx(model_path, precision, engine_cache_dir, index,
                                            max_batch)
        else:
            with open(model_path, 'rb') as stream:
                engine = self._runtime.deserialize_cuda_engine(stream.read())
            if engine is None:
                raise ModelLoadError(f'{model_path}: not a TensorRT engine this TensorRT '
                                     f'{trt.__version__} and GPU can load (built with another '
                                     'version or for another GPU?)')
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise ModelLoadError(f'{model_path}: could not create an execution context (out of '
                                 'GPU memory?)')
        self._inputs: List[str] = []
        self._outputs: List[str] = []
        for i in range(engine.num_io_tensors):
            tensor_name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(tensor_name) == trt.TensorIOMode.INPUT:
                self._inputs.append(tensor_name)
            else:
                self._outputs.append(tensor_name)
        if len(self._inputs) != 1 or not self._outputs:
            raise ModelLoadError(f'{model_path}: expected one input and at least one output, '
                                 f'found inputs {self._inputs} and outputs {self._outputs}')
        self.input_name = self._inputs[0]
        self.input_shape = tuple(d if d > 0 else None
                                 for d in engine.get_tensor_shape(self.input_name))
        self.input_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.input_name))).name
        self.set_max_batch(engine_batch_limit(engine, self.input_name), max_batch)
        self.provider = f'TensorRT {trt.__version__} (GPU {index})'
        # what the engine was built with (diagnostics show it): int8 for a QDQ model, fp16 when
        # FP16 kernels were allowed, else fp32
        self.precision = self.build_info.get('precision_built', precision)
        self._stream = self._check(self._cudart.cudaStreamCreate(), 'create a CUDA stream')[0]
        self._allocated: Dict[str, Tuple[Tuple[int, ...], Any]] = {}

    # -- engines from ONNX models --------------------------------------------------------------
    def gpu_identity(self, index: int) -> Tuple[str, str]:
        """Return (GPU name, compute capability 'major.minor') of a device."""
        properties = self._check(self._cudart.cudaGetDeviceProperties(index),
                                 f'read the properties of GPU {index}')[0]
        name = properties.name
        name = name.decode(errors='replace') if isinstance(name, bytes) else str(name)
        return name.strip('\x00 '), f'{properties.major}.{properties.minor}'

    def _engine_from_onnx(self, onnx_path: str, precision: str, cache_dir: str,
                          index: int, max_batch: int) -> Any:
        """Return an engine for an ONNX model (cached or built now) that takes ``max_batch``."""
        metadata, shape, ops = onnx_summary(onnx_path)
        check_precision_for_model(onnx_path, precision, ops)
        self._metadata = metadata
        gpu_name, capability = self.gpu_identity(index)
        key = EngineKey.for_model(shape, max_batch, onnx_sha256=file_sha256(onnx_path),
                                  tensorrt_version=self._trt.__version__, gpu_name=gpu_name,
                                  compute_capability=capability, precision=precision)
        cache = EngineCache(cache_dir)
        stem = os.path.splitext(os.path.basename(onnx_path))[0]
        options = BuildOptions.for_precision(precision, max_batch=key.batch_profile[2])

        def build() -> Tuple[bytes, Dict[str, Any]]:
            return build_serialized_engine(self._trt, onnx_path, options)

        for attempt in range(2):
            entry, built = cache.get_or_build(stem, key, build)
            with open(entry.engine_path, 'rb') as stream:
                engine = self._runtime.deserialize_cuda_engine(stream.read())
            if engine is not None:
                self.build_info = dict(entry.info, engine_path=entry.engine_path, built_now=built)
                LOGGER.info('tensorrt: %s engine %s (%s, built with %s)', 'built' if built
                            else 'cached', entry.engine_path, precision,
                            entry.info.get('precision_built', precision))
                return engine
            cache.invalidate(entry, f'TensorRT {self._trt.__version__} cannot deserialize it',
                             stem, key)
        raise ModelLoadError(f'{onnx_path}: the engine TensorRT built for it does not '
                             'deserialize (see the TensorRT log above)')

    # -- CUDA helpers ------------------------------------------------------------------------
    def _check(self, result: Any, what: str) -> Tuple[Any, ...]:
        """Raise BackendError if a cuda-python call failed; return its remaining values."""
        if not isinstance(result, tuple):
            result = (result,)
        error, values = result[0], result[1:]
        if int(error) != 0:
            name = self._cudart.cudaGetErrorName(error)[1]
            raise BackendError(f'{self.model_path}: CUDA could not {what} ({name!r})')
        return values

    def _device_buffer(self, tensor_name: str, shape: Tuple[int, ...], dtype: np.dtype) -> Any:
        """Return a device buffer for a tensor, reallocating only when its shape changes."""
        current = self._allocated.get(tensor_name)
        if current is not None and current[0] == shape:
            return current[1]
        if current is not None:
            self._cudart.cudaFree(current[1])
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        pointer = self._check(self._cudart.cudaMalloc(max(nbytes, 1)),
                              f'allocate {nbytes} bytes for {tensor_name}')[0]
        self._allocated[tensor_name] = (shape, pointer)
        self._context.set_tensor_address(tensor_name, int(pointer))
        return pointer

    # -- Backend interface --------------------------------------------------------------------
    def metadata(self) -> Dict[str, str]:
        """Return the ONNX model's metadata map; an engine file takes its spec from a sidecar."""
        return dict(self._metadata)

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Copy the input to the GPU, execute the engine and copy the first output back."""
        trt, cudart = self._trt, self._cudart
        tensor = np.ascontiguousarray(tensor, dtype=self.input_dtype)
        if None in self.input_shape:
            if not self._context.set_input_shape(self.input_name, tensor.shape):
                raise BackendError(f'{self.model_path}: input shape {tensor.shape} is outside '
                                   'the optimization profile of the engine (batches of at '
                                   f'most {self.max_batch})')
        elif tuple(tensor.shape) != self.input_shape:
            raise BackendError(f'{self.model_path}: input of shape {tensor.shape}, the engine '
                               f'takes {self.input_shape}')
        kind = cudart.cudaMemcpyKind
        source = self._device_buffer(self.input_name, tuple(tensor.shape), tensor.dtype)
        self._check(cudart.cudaMemcpyAsync(source, tensor.ctypes.data, tensor.nbytes,
                                           kind.cudaMemcpyHostToDevice, self._stream),
                    'copy the input to the GPU')
        results = {}
        for tensor_name in self._outputs:
            shape = tuple(self._context.get_tensor_shape(tensor_name))
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(tensor_name)))
            self._device_buffer(tensor_name, shape, dtype)
            results[tensor_name] = np.empty(shape, dtype)
        if not self._context.execute_async_v3(self._stream):
            raise BackendError(f'{self.model_path}: TensorRT execution failed (see the TensorRT '
                               'log above)')
        first = self._outputs[0]
        output = results[first]
        self._check(cudart.cudaMemcpyAsync(output.ctypes.data, self._allocated[first][1],
                                           output.nbytes, kind.cudaMemcpyDeviceToHost,
                                           self._stream), 'copy the output from the GPU')
        self._check(cudart.cudaStreamSynchronize(self._stream), 'synchronize the stream')
        return output

    def close(self) -> None:
        """Free device buffers and the stream, and drop the engine."""
        cudart = getattr(self, '_cudart', None)
        if cudart is None:
            return
        for _, pointer in getattr(self, '_allocated', {}).values():
            cudart.cudaFree(pointer)
        self._allocated = {}
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        self._context = None
        self._engine = None

    def __del__(self) -> None:
        """Release GPU resources if the owner forgot to close."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown; nothing left to report
            pass
