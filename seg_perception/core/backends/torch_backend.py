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
Torch backend (registry name ``torch``): a state-dict checkpoint, TorchScript or ``torch.export``.

Code-carrying formats load only when the caller trusts the file (``trust_code=True``):
``torch.export.load`` unpickles parts of a ``.pt2`` archive (any Python code can run) and
TorchScript archives carry code. State-dict checkpoints load weights-only (tensors and plain
containers, nothing that runs) and need no trust.

Three kinds of file, on CPU or CUDA (torch is imported only here, and only when used):

* TorchScript (``torch.jit.save``, usually ``.pt``) and ``torch.export`` programs (``.pt2``)
  that implement their spec's input/output contract; the spec JSON may be stored in the file's
  extra files under :data:`~seg_perception.core.spec.METADATA_KEY`, else in a sidecar YAML.
* A state-dict checkpoint next to a sidecar ``<checkpoint>.yaml`` spec whose ``architecture``
  names the network. The core knows no networks: a *network builder* registered under the entry
  point group :data:`NETWORK_BUILDERS` (the model zoo of :mod:`seg_perception.models`, installed
  with the ``export`` extra, registers one in setup.py) builds it with the weights, and the
  backend adds what the spec promises (uint8 input normalized inside, NHWC input, argmax
  output), so the same Preprocessor/Postprocessor drive every backend.
"""

from importlib.metadata import entry_points
import logging
import os
from typing import Any, Dict, Optional
import zipfile

import numpy as np

from seg_perception.core.backends.base import (Backend, batch_limit, check_max_batch,
                                               check_model_file, check_num_threads,
                                               check_precision, parse_device)
from seg_perception.core.errors import BackendError, ModelLoadError, one_line, SegPerceptionError
from seg_perception.core.spec import load_spec, METADATA_KEY, ModelSpec


LOGGER = logging.getLogger('seg_perception')
EXPORTED_PROGRAM_SUFFIX = '.pt2'
# entry point group of callables (architecture, num_classes, weights path) -> torch.nn.Module
NETWORK_BUILDERS = 'seg_perception.network_builders'


def is_torchscript(path: str) -> bool:
    """Return True for a TorchScript archive (a zip with a ``code/`` folder); reads no pickle."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any('/code/' in f'/{name}' for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def build_network(architecture: str, num_classes: int, weights: str) -> Any:
    """Build a network with its weights through the registered builders (the first that knows)."""
    builders = sorted(entry_points(group=NETWORK_BUILDERS), key=lambda point: point.name)
    if not builders:
        raise ModelLoadError(f'{weights}: a state-dict checkpoint needs a network builder '
                             f'(entry point group {NETWORK_BUILDERS!r}); none is installed: '
                             'pip install "seg_perception[export]"')
    errors = []
    for point in builders:
        try:
            return point.load()(architecture, num_classes, weights)
        except ModelLoadError as error:
            errors.append(str(error))
    raise ModelLoadError('; '.join(errors))


def import_torch() -> Any:
    """Return the torch module or raise BackendError saying what to install."""
    try:
        import torch
    except ImportError as error:
        raise BackendError(f'torch backend: torch is not importable ({one_line(error)}); '
                           'pip install "seg_perception[export]"') from None
    return torch


def spec_adapter(torch: Any, network: Any, spec: ModelSpec) -> Any:
    """Wrap a zoo network (normalized float NCHW -> logits) so it honours ``spec``'s contract."""

    class SpecAdapter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network
            scale = 255.0 if spec.input_dtype == 'uint8' else 1.0
            mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1) * scale
            std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1) * scale
            self.register_buffer('mean', mean)
            self.register_buffer('std', std)

        def forward(self, pixels: Any) -> Any:
            if spec.input_layout == 'nhwc':
                pixels = pixels.permute(0, 3, 1, 2)
            pixels = pixels.float()
            if spec.input_dtype == 'uint8':
                pixels = (pixels - self.mean) / self.std
            logits = self.network(pixels)
            if isinstance(logits, dict):
                logits = logits['out']
            if spec.output_kind == 'labels':
                return logits.argmax(dim=1).to(torch.uint8)
            if spec.output_kind == 'labels_confidence':
                best = logits.float().softmax(dim=1).max(dim=1)
                confidence = torch.round(best.values * 255).to(torch.uint8)
                return torch.stack([best.indices.to(torch.uint8), confidence], dim=1)
            return logits

    return SpecAdapter()


def exported_batch_limit(torch: Any, program: Any) -> Optional[int]:
    """
    Return the largest batch a ``torch.export`` program takes, or None when it takes any.

    An example-shaped export fixes dim 0 (its module asserts that size); a ``Dim('batch')``
    export makes it symbolic, bounded by the program's range constraints (``max=``, or none).
    """
    try:
        name = program.graph_signature.user_inputs[0]
        node = next(n for n in program.graph.nodes if n.op == 'placeholder' and n.name == name)
        dim = node.meta['val'].shape[0]
        if not isinstance(dim, torch.SymInt):
            return batch_limit(int(dim))
        upper = program.range_constraints[dim.node.expr].upper
        return int(upper) if upper.is_Integer else None  # int_oo: unbounded
    except Exception as error:  # noqa: BLE001 - torch.export internals differ by release
        LOGGER.debug('torch: the batch of the exported program is unknown (%s)',
                     one_line(error))
        return None


class TorchBackend(Backend):
    """Run a TorchScript / torch.export file or a zoo checkpoint with torch."""

    name = 'torch'

    def __init__(self, model_path: str, device: str = '', precision: str = 'fp32',
                 num_threads: int = 0, engine_cache_dir: str = '',
                 trust_code: bool = False, max_batch: int = 0) -> None:
        super().__init__(model_path)
        self._trust_code = trust_code is True
        torch = self._torch = import_torch()
        check_precision(precision)
        max_batch = check_max_batch(max_batch)
        check_model_file(model_path, 'torch model')
        kind, index = parse_device(device)
        if kind == 'cuda' and not torch.cuda.is_available():
            raise BackendError(f'torch backend: device {device!r} asked for CUDA but torch '
                               f'{torch.__version__} sees no GPU')
        use_cuda = kind == 'cuda' or (kind == 'auto' and torch.cuda.is_available())
        self._device = torch.device(f'cuda:{index}' if use_cuda else 'cpu')
        if precision == 'int8':
            raise BackendError('torch backend: precision int8 is not supported; export an INT8 '
                               'ONNX model and use the onnxruntime backend')
        self._half = precision == 'fp16' and use_cuda
        if precision == 'fp16' and not use_cuda:
            LOGGER.warning('torch backend: fp16 needs CUDA; running fp32 on the CPU')
        self.precision = 'fp16' if self._half else 'fp32'
        if check_num_threads(num_threads) > 0:
            torch.set_num_threads(int(num_threads))  # process-wide in torch
        self._metadata: Dict[str, str] = {}
        self._batch_limit: Optional[int] = None  # networks and TorchScript take any batch
        self._model = self._load(torch)
        self.set_max_batch(self._batch_limit, max_batch)
        self.provider = f'torch-{self._device}'
        spec = self._spec_or_none()
        if spec is not None:
            self.input_dtype = spec.input_dtype
            hw = (spec.input_height, spec.input_width)
            self.input_shape = (1, 3) + hw if spec.input_layout == 'nchw' else (1,) + hw + (3,)
        self.input_name = 'input'
        LOGGER.info('torch: %s runs on %s, precision %s', os.path.basename(model_path),
                    self._device, self.precision)

    def _spec_or_none(self) -> Any:
        try:
            return load_spec(self.model_path, self._metadata)
        except SegPerceptionError:
            return None

    def _load(self, torch: Any) -> Any:
        """Return the model on its device, from an exported program, TorchScript or checkpoint."""
        path = self.model_path
        extra = {METADATA_KEY: ''}
        if path.endswith(EXPORTED_PROGRAM_SUFFIX):
            self._require_trust('a torch.export program (.pt2) is unpickled when it loads')
            try:
                program = torch.export.load(path, extra_files=extra)
            except Exception as error:  # noqa: BLE001 - torch raises many types for bad files
                raise ModelLoadError(f'{path}: not a loadable torch.export program '
                                     f'({one_line(error)})') from None
            self._store_extra(extra)
            self._batch_limit = exported_batch_limit(torch, program)
            if self._device.type != 'cpu':
                from torch.export.passes import move_to_device_pass
                program = move_to_device_pass(program, self._device)
            return program.module()  # exported in eval mode; has no .eval()
        if is_torchscript(path):
            self._require_trust('a TorchScript archive carries code that runs')
            try:
                module = torch.jit.load(path, map_location=self._device, _extra_files=extra)
            except Exception as error:  # noqa: BLE001 - torch raises many types for bad files
                raise ModelLoadError(f'{path}: not a loadable TorchScript archive '
                                     f'({one_line(error)})') from None
            self._store_extra(extra)
            return module.eval()
        try:
            spec = load_spec(path, {})
        except SegPerceptionError as error:
            raise ModelLoadError(f'{path}: not TorchScript (no code in the file) and no '
                                 f'checkpoint spec: {error}') from None
        network = build_network(spec.architecture, spec.num_classes, path)
        return spec_adapter(torch, network, spec).to(self._device).eval()

    def _require_trust(self, what: str) -> None:
        """Refuse a code-carrying file unless the caller said it trusts it."""
        if not self._trust_code:
            raise ModelLoadError(
                f'{self.model_path}: not loaded: {what}. Load only a file you trust, with '
                'trust_code=True (tools: --trust-model-code; node: the start-up parameter '
                'allow_torch_models), or export the model to ONNX')

    def _store_extra(self, extra: Dict[str, Any]) -> None:
        value = extra.get(METADATA_KEY)
        if isinstance(value, bytes):
            value = value.decode('utf-8')
        if value:
            self._metadata[METADATA_KEY] = value

    def metadata(self) -> Dict[str, str]:
        """Return the spec JSON stored in the file's extra files, if any."""
        return dict(self._metadata)

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Run one forward pass; return the first output on the host."""
        torch = self._torch
        try:
            with torch.inference_mode():
                inputs = torch.from_numpy(np.ascontiguousarray(tensor)).to(self._device)
                if self._half:
                    with torch.autocast(device_type='cuda', dtype=torch.float16):
                        output = self._model(inputs)
                else:
                    output = self._model(inputs)
                if isinstance(output, dict):
                    output = output['out']
                elif isinstance(output, (list, tuple)):
                    output = output[0]
                if output.dtype == torch.float16:
                    output = output.float()
                return output.cpu().numpy()
        except Exception as error:  # noqa: BLE001 - torch raises many types
            raise BackendError(f'{self.model_path}: inference failed on a {tensor.shape} '
                               f'{tensor.dtype} input ({one_line(error)})') from None

    def close(self) -> None:
        """Drop the model."""
        self._model = None
