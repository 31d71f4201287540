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
ONNX Runtime backend: TensorRT EP, then CUDA EP, then CPU, whichever is available and loads.

``device=''`` tries the GPU execution providers the installed onnxruntime offers and falls back to
the CPU; ``device='cpu'`` forces the CPU; ``device='cuda:N'`` picks GPU N. ``precision`` fp16/int8
is applied by the TensorRT EP (with its engine cache in ``engine_cache_dir``); the CUDA and CPU
EPs run the graph as exported (an INT8 QDQ file runs INT8). One log line on the
``seg_perception`` logger says which EP runs.
"""

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from seg_perception.core.backends.base import (Backend, batch_limit, check_max_batch,
                                               check_model_file, check_num_threads,
                                               check_precision, make_cache_dir, parse_device)
from seg_perception.core.errors import BackendError, ModelLoadError, one_line


LOGGER = logging.getLogger('seg_perception')
TENSORRT_EP = 'TensorrtExecutionProvider'
CUDA_EP = 'CUDAExecutionProvider'
CPU_EP = 'CPUExecutionProvider'
_ONNX_TYPES = {'tensor(uint8)': 'uint8', 'tensor(float)': 'float32',
               'tensor(float16)': 'float16', 'tensor(int64)': 'int64', 'tensor(int32)': 'int32'}


def provider_chain(available: List[str], device: str, precision: str,
                   engine_cache_dir: str) -> List[Tuple[str, Dict[str, Any]]]:
    """Return the (provider, options) list to try, best first, CPU last."""
    kind, index = parse_device(device)
    chain: List[Tuple[str, Dict[str, Any]]] = []
    if kind != 'cpu':
        if TENSORRT_EP in available:
            options: Dict[str, Any] = {'device_id': index,
                                       'trt_fp16_enable': precision in ('fp16', 'int8'),
                                       'trt_int8_enable': precision == 'int8'}
            if engine_cache_dir:
                options.update(trt_engine_cache_enable=True,
                               trt_engine_cache_path=engine_cache_dir,
                               trt_timing_cache_enable=True,
                               trt_timing_cache_path=engine_cache_dir)
            chain.append((TENSORRT_EP, options))
        if CUDA_EP in available:
            chain.append((CUDA_EP, {'device_id': index}))
        if kind == 'cuda' and not chain:
            raise BackendError(f'device {device!r} asked for a GPU but this onnxruntime offers '
                               f'only {available} (install onnxruntime-gpu)')
    chain.append((CPU_EP, {}))
    return chain


def preload_cuda_libraries(ort: Any) -> None:
    """
    Load CUDA and cuDNN from the ``nvidia-*`` pip packages (or torch) when they are installed.

    onnxruntime-gpu links its CUDA EP against CUDA by soname; with CUDA from pip wheels rather
    than the system, nothing is on the loader path until ``onnxruntime.preload_dlls()`` (1.21+)
    loads them. With a system CUDA it finds nothing to do.
    """
    preload = getattr(ort, 'preload_dlls', None)
    if preload is None:
        return
    try:
        preload()
    except Exception as error:  # noqa: BLE001 - best effort; the EP load reports what is missing
        LOGGER.debug('onnxruntime: preload_dlls() failed (%s)', one_line(error))


class OnnxRuntimeBackend(Backend):
    """Run an ONNX model with ONNX Runtime (graph optimizations on, threads configurable)."""

    name = 'onnxruntime'

    def __init__(self, model_path: str, device: str = '', precision: str = 'fp32',
                 num_threads: int = 0, engine_cache_dir: str = '',
                 trust_code: bool = False,  # ONNX carries no code: always loadable
                 max_batch: int = 0) -> None:
        super().__init__(model_path)
        import onnxruntime as ort

        check_model_file(model_path, 'ONNX model')
        check_precision(precision)
        num_threads = check_num_threads(num_threads)
        max_batch = check_max_batch(max_batch)
        engine_cache_dir = make_cache_dir(engine_cache_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only; fallbacks are reported by our log line
        # Idle intra-op threads sleep instead of spinning. A spinning pool thread steals the core
        # that the camera driver and DDS need; measured through the node at 1280x720, 30 Hz on
        # 2 cores, spinning flipped between 19.6 and 34 ms of in-node inference (p50 27.7-63 ms
        # stamp -> labels) while sleeping held 19.9-20.5 ms (p50 25.7-26.8 ms), at the price of
        # about 1 ms of model-only time on an idle machine.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        chain = provider_chain(ort.get_available_providers(), device, precision,
                               engine_cache_dir)
        if chain[0][0] != CPU_EP:
            preload_cuda_libraries(ort)
        self._session = self._open(ort, options, chain)
        active = self._session.get_providers()[0]
        self.provider = active
        self.precision = precision if active == TENSORRT_EP else (
            'fp32' if precision == 'fp32' else 'as-exported')
        model_input = self._session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_shape = tuple(d if isinstance(d, int) and d > 0 else None
                                 for d in model_input.shape)
        self.input_dtype = _ONNX_TYPES.get(model_input.type, model_input.type)
        # a symbolic dim 0 (export --dynamic) takes any batch; a fixed one takes only itself
        self.set_max_batch(batch_limit(model_input.shape[0]) if model_input.shape else None,
                           max_batch)
        self._output_name = self._session.get_outputs()[0].name
        wanted = chain[0][0]
        message = (f'onnxruntime: {os.path.basename(model_path)} runs on {active}'
                   f'{" (device %s)" % device if device else ""}, precision {self.precision}, '
                   f'{num_threads or "default"} threads')
        if active != wanted:
            LOGGER.warning('%s; %s was not usable, fell back', message, wanted)
        else:
            LOGGER.info(message)
        if precision != 'fp32' and active != TENSORRT_EP:
            LOGGER.warning('onnxruntime: precision %s needs the TensorRT EP; %s runs the graph '
                           'as exported', precision, active)

    def _open(self, ort: Any, options: Any, chain: List[Tuple[str, Dict[str, Any]]]) -> Any:
        """Create the session with the provider chain, dropping GPU providers that fail."""
        last_error: Optional[BaseException] = None
        for start in range(len(chain)):
            providers = chain[start:]
            try:
                return ort.InferenceSession(self.model_path, sess_options=options,
                                            providers=[p for p, _ in providers],
                                            provider_options=[o for _, o in providers])
            except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
                last_error = error
                if providers[0][0] != CPU_EP:
                    LOGGER.warning('onnxruntime: %s failed to load %s (%s); trying the next '
                                   'provider', providers[0][0], self.model_path,
                                   one_line(error))
        raise ModelLoadError(f'{self.model_path}: not a loadable ONNX model '
                             f'({one_line(last_error)})')

    def metadata(self) -> Dict[str, str]:
        """Return the ONNX ``metadata_props`` (custom metadata map)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Run one inference; errors name the model and the tensor."""
        try:
            return self._session.run([self._output_name], {self.input_name: tensor})[0]
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise BackendError(f'{self.model_path}: inference failed on a {tensor.shape} '
                               f'{tensor.dtype} input ({one_line(error)})') from None

    def close(self) -> None:
        """Drop the session."""
        self._session = None
