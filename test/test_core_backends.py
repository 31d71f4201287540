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

"""Backends: registry, ONNX Runtime loading errors and providers, TensorRT, torch parity."""

import importlib.util
import logging
import pathlib
import re
import shutil
import warnings

import numpy as np
import pytest

from seg_perception.core.backends import (available_backends, CHOICES, create_backend,
                                          resolve_backend_name)
from seg_perception.core.backends.onnxruntime import provider_chain
from seg_perception.core.errors import BackendError, ModelLoadError
from seg_perception.core.spec import METADATA_KEY, ModelSpec

HAVE_TORCH = importlib.util.find_spec('torch') is not None
HAVE_TENSORRT = importlib.util.find_spec('tensorrt') is not None


def test_registry_names_and_auto():
    assert CHOICES == ('auto', 'onnxruntime', 'tensorrt', 'torch')
    assert 'onnxruntime' in available_backends()
    assert resolve_backend_name('auto', 'm.engine') == 'tensorrt'
    assert resolve_backend_name('auto', 'm.PLAN') == 'tensorrt'
    assert resolve_backend_name('auto', 'm.onnx') == 'onnxruntime'
    assert resolve_backend_name('auto', 'm.pt2') == 'torch'
    assert resolve_backend_name('torch', 'm.onnx') == 'torch'


def test_unknown_backend_and_options_list_the_choices(labels_model):
    with pytest.raises(BackendError, match=r"'openvino'.*auto.*onnxruntime.*tensorrt.*torch"):
        create_backend('openvino', labels_model)
    with pytest.raises(BackendError, match=r"\['batch'\].*num_threads.*max_batch"):
        create_backend('onnxruntime', labels_model, batch=4)
    with pytest.raises(BackendError, match=r"precision 'fp64'.*fp16"):
        create_backend('onnxruntime', labels_model, precision='fp64')
    with pytest.raises(BackendError, match=r"device 'tpu'"):
        create_backend('onnxruntime', labels_model, device='tpu')


def test_onnxruntime_backend_loads_and_logs_its_provider(labels_model, caplog):
    caplog.set_level(logging.INFO, logger='seg_perception')
    with create_backend('auto', labels_model, num_threads=1) as backend:
        assert backend.name == 'onnxruntime'
        assert backend.provider == 'CPUExecutionProvider'
        assert backend.input_dtype == 'uint8' and backend.input_shape == (1, 3, 96, 128)
        assert METADATA_KEY in backend.metadata()
        spec = ModelSpec.from_json(backend.metadata()[METADATA_KEY], labels_model)
        assert spec.output_kind == 'labels'
        output = backend.infer(np.zeros(backend.input_shape, np.uint8))
        assert output.shape == (1, 96, 128) and output.dtype == np.uint8
        with pytest.raises(BackendError, match=r'lraspp_labels.onnx: inference failed'):
            backend.infer(np.zeros((1, 3, 96, 128), np.float32))
    lines = [r.getMessage() for r in caplog.records if r.name == 'seg_perception']
    assert any('runs on CPUExecutionProvider' in line for line in lines), lines


@pytest.fixture(scope='module')
def dynamic_model(tmp_path_factory):
    """Export the labels model with a symbolic batch dimension (export --dynamic)."""
    if not HAVE_TORCH:
        pytest.skip('exporting a model needs torch')
    from conftest import export_test_model
    return export_test_model(tmp_path_factory.mktemp('dynamic') / 'lraspp_dynamic.onnx',
                             dynamic=True)


def batch_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == 'seg_perception' and 'max_batch' in r.getMessage()]


def test_onnxruntime_max_batch_is_the_fixed_batch_or_none(labels_model, dynamic_model, caplog):
    caplog.set_level(logging.WARNING, logger='seg_perception')
    with create_backend('onnxruntime', labels_model) as fixed:
        assert fixed.max_batch == 1 and fixed.describe()['max_batch'] == '1'
    assert batch_warnings(caplog) == []
    with create_backend('onnxruntime', labels_model, max_batch=4) as fixed:
        assert fixed.max_batch == 1  # the file decides; the caller splits its batches
    assert batch_warnings(caplog) == [
        f'onnxruntime: {labels_model} takes batches of at most 1, max_batch 4 was asked for; '
        'larger batches must be split']
    caplog.clear()
    with create_backend('auto', dynamic_model, max_batch=4) as dynamic:
        assert dynamic.max_batch is None and dynamic.describe()['max_batch'] == 'any'
        assert dynamic.input_shape == (None, 3, 96, 128)
        assert dynamic.infer(np.zeros((4, 3, 96, 128), np.uint8)).shape == (4, 96, 128)
    assert batch_warnings(caplog) == []


@pytest.mark.parametrize('name', ['onnxruntime', 'tensorrt', 'torch', 'auto'])
@pytest.mark.parametrize('value', [-1, 'x', 2.5, True, None])
def test_a_bad_max_batch_is_refused_naming_it(labels_model, name, value):
    if name == 'torch' and not HAVE_TORCH:
        pytest.skip('torch is not installed')
    with pytest.raises(BackendError, match=r'max_batch must be an integer >= 0.*got '
                       + re.escape(repr(value))):
        create_backend(name, labels_model, max_batch=value)


def test_provider_chain_prefers_gpus_and_ends_on_cpu(tmp_path):
    gpu = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
    chain = provider_chain(gpu, 'cuda:1', 'fp16', str(tmp_path))
    assert [name for name, _ in chain] == gpu
    trt_options = chain[0][1]
    assert trt_options['device_id'] == 1 and trt_options['trt_fp16_enable']
    assert not trt_options['trt_int8_enable']
    assert trt_options['trt_engine_cache_path'] == str(tmp_path)
    assert chain[1][1] == {'device_id': 1}
    assert [name for name, _ in provider_chain(gpu, 'cpu', 'fp32', '')] == [
        'CPUExecutionProvider']
    with pytest.raises(BackendError, match='onnxruntime-gpu'):
        provider_chain(['CPUExecutionProvider'], 'cuda', 'fp32', '')


def test_cpu_only_onnxruntime_rejects_an_explicit_gpu(labels_model):
    import onnxruntime
    if 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        pytest.skip('this onnxruntime has CUDA')
    with pytest.raises(BackendError, match='asked for a GPU'):
        create_backend('onnxruntime', labels_model, device='cuda:0')


@pytest.mark.parametrize('case', ['missing', 'empty', 'truncated', 'not_onnx', 'folder'])
def test_bad_model_files_name_the_file(labels_model, camvid_samples, tmp_path, case):
    path = tmp_path / f'{case}.onnx'
    if case == 'empty':
        path.write_bytes(b'')
    elif case == 'truncated':
        data = pathlib.Path(labels_model).read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif case == 'not_onnx':
        shutil.copy(__file__, path)
    elif case == 'folder':
        path.mkdir()
    with pytest.raises(ModelLoadError) as caught:
        create_backend('auto', str(path))
    message = str(caught.value)
    assert str(path) in message and '\n' not in message


def test_tensorrt_without_the_library_says_what_to_install(tmp_path):
    if HAVE_TENSORRT:
        pytest.skip('tensorrt is installed here')
    engine = tmp_path / 'model.engine'
    engine.write_bytes(b'not an engine')
    with pytest.raises(BackendError,
                       match=r'tensorrt.*not importable.*seg_perception\[tensorrt\]'):
        create_backend('auto', str(engine))


def build_engine(onnx_path, engine_path):
    """Build a TensorRT engine from an ONNX file with the TensorRT 10 Python API."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, 'rb') as stream:
        assert parser.parse(stream.read()), [str(parser.get_error(i))
                                             for i in range(parser.num_errors)]
    serialized = builder.build_serialized_network(network, builder.create_builder_config())
    assert serialized is not None
    with open(engine_path, 'wb') as stream:
        stream.write(serialized)


@pytest.mark.gpu
def test_tensorrt_engine_max_batch_comes_from_its_profile(dynamic_model, tmp_path, caplog):
    from seg_perception.core.backends import tensorrt_unavailable
    reason = tensorrt_unavailable()
    if reason:
        pytest.skip(f'needs TensorRT and an NVIDIA GPU ({reason})')
    import tensorrt as trt

    from seg_perception.core.backends.tensorrt_build import build_serialized_engine, BuildOptions
    engine_path = tmp_path / 'dynamic.engine'
    serialized, _ = build_serialized_engine(trt, dynamic_model, BuildOptions(max_batch=3))
    engine_path.write_bytes(serialized)
    caplog.set_level(logging.WARNING, logger='seg_perception')
    with create_backend('tensorrt', str(engine_path), max_batch=5) as backend:
        assert backend.max_batch == 3
        assert backend.infer(np.zeros((3, 3, 96, 128), np.uint8)).shape == (3, 96, 128)
    assert batch_warnings(caplog) == [
        f'tensorrt: {engine_path} takes batches of at most 3, max_batch 5 was asked for; '
        'larger batches must be split']


@pytest.mark.gpu
def test_tensorrt_engine_matches_onnxruntime(labels_model, tmp_path, camvid_samples):
    if not HAVE_TENSORRT:
        pytest.skip('needs TensorRT and an NVIDIA GPU (tensorrt is not installed here)')
    from seg_perception.core import Segmenter
    engine = tmp_path / 'lraspp_labels.engine'
    build_engine(labels_model, str(engine))
    with Segmenter(labels_model) as reference:
        reference.spec.save_yaml(str(tmp_path / 'lraspp_labels.yaml'))  # engines need a sidecar
        expected = [reference.process(rgb).labels for _, rgb, _ in camvid_samples[:3]]
    with Segmenter(str(engine)) as segmenter:
        assert segmenter.backend.name == 'tensorrt'
        for (_, rgb, _), labels in zip(camvid_samples[:3], expected):
            assert (segmenter.process(rgb).labels == labels).mean() >= 0.99


def reference_logits_model():
    """Rebuild the torch network the logits_model fixture exported (same seed, same zoo)."""
    import torch

    from seg_perception.models.zoo import create_model
    torch.manual_seed(0)
    return create_model('lraspp', num_classes=11).eval()


@pytest.mark.skipif(not HAVE_TORCH, reason='torch is not installed')
@pytest.mark.parametrize('kind', ['torch.export', 'torchscript'])
def test_torch_file_with_embedded_spec_matches_onnxruntime(logits_model, tmp_path,
                                                           camvid_samples, kind):
    import torch

    from seg_perception.core.backends.torch_backend import spec_adapter
    from seg_perception.core.preprocess import Preprocessor
    with create_backend('onnxruntime', logits_model) as ort_backend:
        spec = ModelSpec.from_json(ort_backend.metadata()[METADATA_KEY], logits_model)
        tensor, _ = Preprocessor(spec)(camvid_samples[0][1], 'rgb8')
        tensor = tensor.copy()
        expected = ort_backend.infer(tensor)
    adapter = spec_adapter(torch, reference_logits_model(), spec).eval()
    extra = {METADATA_KEY: spec.to_json()}
    if kind == 'torch.export':
        path = tmp_path / 'lraspp.pt2'
        program = torch.export.export(adapter, (torch.from_numpy(tensor),))
        torch.export.save(program, str(path), extra_files=extra)
    else:
        path = tmp_path / 'lraspp.pt'
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)  # TorchScript is deprecated
            scripted = torch.jit.trace(adapter, torch.from_numpy(tensor))
            torch.jit.save(scripted, str(path), _extra_files=extra)
    # a file this test made itself: trusted (code-carrying formats need it)
    with create_backend('auto', str(path), device='cpu', trust_code=True) as backend:
        assert backend.name == 'torch' and backend.provider == 'torch-cpu'
        embedded = ModelSpec.from_json(backend.metadata()[METADATA_KEY], str(path))
        assert embedded.to_dict() == spec.to_dict()
        assert backend.input_dtype == 'float32'
        # torch.export fixed the example's batch of 1; a traced module takes any batch
        assert backend.max_batch == (1 if kind == 'torch.export' else None)
        logits = backend.infer(tensor)
    assert logits.shape == expected.shape == (1, 11, 96, 128)
    assert np.abs(logits - expected).max() < 1e-3


@pytest.mark.skipif(not HAVE_TORCH, reason='torch is not installed')
def test_zoo_checkpoint_with_sidecar_spec_matches_onnxruntime(labels_model, tmp_path,
                                                              camvid_samples):
    import torch

    from seg_perception.core import Segmenter
    checkpoint = tmp_path / 'lraspp_labels.pth'
    torch.manual_seed(0)
    from seg_perception.models.zoo import create_model
    torch.save(create_model('lraspp', num_classes=11).state_dict(), str(checkpoint))
    with Segmenter(labels_model) as reference:
        reference.spec.save_yaml(str(tmp_path / 'lraspp_labels.yaml'))
        expected = reference.process(camvid_samples[0][1]).labels
    with Segmenter(str(checkpoint), backend='auto', device='cpu') as segmenter:
        assert segmenter.backend.name == 'torch'
        assert segmenter.backend.max_batch is None  # a rebuilt network takes any batch
        labels = segmenter.process(camvid_samples[0][1]).labels
    assert (labels == expected).mean() >= 0.99


@pytest.mark.skipif(not HAVE_TORCH, reason='torch is not installed')
@pytest.mark.parametrize('upper, expected', [(8, 8), (None, None)])
def test_torch_export_max_batch_is_the_batch_dims_upper_bound(tmp_path, upper, expected):
    import torch

    batch = torch.export.Dim('batch', min=1, max=upper) if upper else torch.export.Dim('batch')
    program = torch.export.export(torch.nn.Conv2d(3, 2, 1).eval(), (torch.zeros(2, 3, 8, 8),),
                                  dynamic_shapes=({0: batch},))
    path = tmp_path / 'conv.pt2'
    torch.export.save(program, str(path))
    with create_backend('torch', str(path), device='cpu', trust_code=True) as backend:
        assert backend.max_batch == expected
        assert backend.infer(np.zeros((3, 3, 8, 8), np.float32)).shape == (3, 2, 8, 8)


@pytest.mark.skipif(not HAVE_TORCH, reason='torch is not installed')
def test_torch_backend_bad_files(tmp_path):
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'not a torch file')
    with pytest.raises(ModelLoadError, match=r'junk.pt: not TorchScript .*no checkpoint spec'):
        create_backend('torch', str(junk))
    with pytest.raises(BackendError, match='int8'):
        create_backend('torch', str(junk), precision='int8')


BUNDLED_CHECKPOINT = (pathlib.Path(__file__).parent.parent / 'training' / 'lraspp_final'
                      / 'final.pt')


def test_split_architecture_accepts_every_spelling():
    from seg_perception.models.zoo import split_architecture
    assert split_architecture('lraspp') == ('lraspp', None)
    assert split_architecture('pspnet/resnet18') == ('pspnet', 'resnet18')
    assert split_architecture('lraspp-mobilenet_v3_large') == ('lraspp', 'mobilenet_v3_large')
    assert split_architecture('deeplabv3plus-mobilenet_v2') == ('deeplabv3plus', 'mobilenet_v2')


@pytest.fixture(scope='module')
def bundled_checkpoint(tmp_path_factory, camvid_samples):
    """
    Return the bundled model's checkpoint (spec beside it), its ONNX export and ONNX labels.

    The ONNX reference is exported here from the same weights without the bundle's class bias
    (an export-time offset the checkpoint does not carry), so both paths run the same network.
    """
    from seg_perception.core import Segmenter
    from seg_perception.tools import cli
    folder = tmp_path_factory.mktemp('checkpoint')
    checkpoint = folder / 'camvid_lraspp.pt'
    shutil.copy(BUNDLED_CHECKPOINT, checkpoint)
    onnx_path = folder / 'reference.onnx'
    assert cli.main(['export', '--arch', 'lraspp', '--classes', 'camvid', '--weights',
                     str(BUNDLED_CHECKPOINT), '--height', '360', '--width', '480',
                     '--no-flops', '--out', str(onnx_path)]) == 0
    with Segmenter(str(onnx_path), device='cpu') as reference:
        reference.spec.save_yaml(str(folder / 'camvid_lraspp.yaml'))
        expected = [reference.process(rgb).labels for _, rgb, _ in camvid_samples[:4]]
    return str(checkpoint), str(onnx_path), expected


def segment_samples(model_path, samples, **options):
    """Return the backend and the labels a Segmenter makes of the samples."""
    from seg_perception.core import Segmenter
    with Segmenter(model_path, **options) as segmenter:
        labels = [segmenter.process(rgb).labels for _, rgb, _ in samples]
        return segmenter.backend.name, segmenter.backend.provider, labels


@pytest.mark.skipif(not HAVE_TORCH, reason='torch is not installed')
def test_bundled_checkpoint_on_torch_matches_its_onnx_export(bundled_checkpoint,
                                                             camvid_samples):
    checkpoint, _, expected = bundled_checkpoint
    name, provider, labels = segment_samples(checkpoint, camvid_samples[:4], device='cpu')
    assert (name, provider) == ('torch', 'torch-cpu')
    for got, want in zip(labels, expected):
        assert (got == want).mean() >= 0.99


def torch_sees_a_gpu():
    if not HAVE_TORCH:
        return False
    import torch
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not torch_sees_a_gpu(), reason='needs an NVIDIA GPU that torch can use '
                                                   '(torch sees no CUDA device here)')
@pytest.mark.parametrize('precision, agreement', [('fp32', 0.99), ('fp16', 0.98)])
def test_torch_cuda_matches_the_cpu(bundled_checkpoint, camvid_samples, precision, agreement):
    checkpoint, _, expected = bundled_checkpoint
    name, provider, labels = segment_samples(checkpoint, camvid_samples[:4], device='cuda:0',
                                             precision=precision)
    assert (name, provider) == ('torch', 'torch-cuda:0')
    for got, want in zip(labels, expected):
        assert (got == want).mean() >= agreement


def onnxruntime_has_cuda():
    import onnxruntime
    return 'CUDAExecutionProvider' in onnxruntime.get_available_providers()


@pytest.mark.gpu
@pytest.mark.skipif(not onnxruntime_has_cuda(), reason='needs onnxruntime-gpu and an NVIDIA GPU '
                                                       '(this onnxruntime has no CUDA EP)')
def test_onnxruntime_cuda_matches_the_cpu(bundled_checkpoint, camvid_samples):
    _, onnx_path, expected = bundled_checkpoint
    name, provider, labels = segment_samples(onnx_path, camvid_samples[:4],
                                             device='cuda:0')
    assert (name, provider) == ('onnxruntime', 'CUDAExecutionProvider')
    for got, want in zip(labels, expected):
        assert (got == want).mean() >= 0.99
