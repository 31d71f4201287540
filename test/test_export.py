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
Torch vs ONNX Runtime parity of every zoo family on real CamVid frames, fused I/O, metadata.

Randomly initialised networks have batch-norm statistics of 0/1, which makes their logits tiny
and their label maps nearly constant, so parity on them proves little. Each model first gets
real batch-norm statistics from the CamVid sample frames (one forward pass in train mode with a
cumulative average), which gives logits of a trained network's scale and varied label maps.
"""

import os

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seg_perception.core.spec import load_class_table, load_spec, METADATA_KEY, ModelSpec
from seg_perception.models.export import export_model, ExportError
from seg_perception.models.zoo import create_model

HEIGHT, WIDTH = 96, 128  # valid for every family (multiples of 32)
LOGITS_TOLERANCE = 1e-3
MIN_LABEL_AGREEMENT = 0.999

FAMILIES = [
    ('deeplabv3', 'mobilenet_v3_large'),
    ('deeplabv3plus', 'mobilenet_v2'),
    ('pspnet', 'resnet18'),
    ('unet', 'resnet18'),
    ('lraspp', 'mobilenet_v3_large'),
    pytest.param('fcn', 'resnet50', marks=pytest.mark.slow),
    pytest.param('deeplabv3', 'resnet50', marks=pytest.mark.slow),
]


@pytest.fixture(scope='module', autouse=True)
def two_threads():
    """Keep torch on the two cores CI has."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='module')
def frames(camvid_samples):
    """Return the CamVid sample frames resized to the test size, RGB uint8 N x H x W x 3."""
    return np.stack([cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
                     for _, rgb, _ in camvid_samples])


def torch_normalize(frames_rgb: np.ndarray, spec: ModelSpec) -> torch.Tensor:
    """Normalize RGB uint8 N x H x W x 3 the reference way: /255, mean/std, NCHW float."""
    x = torch.from_numpy(frames_rgb).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


def make_spec(arch: str, **overrides) -> ModelSpec:
    """Return a CamVid spec at the test size."""
    table = load_class_table('camvid')
    fields = dict(classes=table.classes, input_height=HEIGHT, input_width=WIDTH,
                  architecture=arch, dataset=table.name, drivable_classes=table.drivable)
    fields.update(overrides)
    return ModelSpec(**fields)


def model_with_real_statistics(arch: str, backbone: str, calibration: torch.Tensor):
    """Return a seeded zoo model whose batch-norm statistics come from real frames."""
    torch.manual_seed(0)
    model = create_model(arch, backbone, num_classes=11)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the pass
    model.train()
    with torch.no_grad():
        model(calibration)
    return model.eval()


def session(path: str) -> ort.InferenceSession:
    """Open a model with ONNX Runtime on two CPU threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def metadata_spec(path: str) -> ModelSpec:
    """Return the spec stored in a model file's metadata."""
    return load_spec(path, session(path).get_modelmeta().custom_metadata_map)


@pytest.mark.parametrize('arch,backbone', FAMILIES)
def test_family_parity_on_camvid(arch, backbone, frames, tmp_path):
    """Export a family twice; ONNX Runtime matches torch in logits, labels and metadata."""
    spec_logits = make_spec(f'{arch}-{backbone}')
    x = torch_normalize(frames, spec_logits)
    model = model_with_real_statistics(arch, backbone, x)
    with torch.no_grad():
        reference = model(x).numpy()
    reference_labels = reference.argmax(1)
    # a meaningful comparison needs logits of real scale and more than one predicted class
    assert np.abs(reference).max() > 0.1
    assert len(np.unique(reference_labels)) > 1

    # float input, logits output, dynamic batch: all frames in one run
    logits_path = str(tmp_path / 'logits.onnx')
    summary = export_model(model, spec_logits, logits_path, dynamic=True)
    logits = session(logits_path).run(['logits'], {'input': x.numpy()})[0]
    assert logits.shape == reference.shape
    assert np.abs(logits - reference).max() < LOGITS_TOLERANCE
    assert np.mean(logits.argmax(1) == reference_labels) >= MIN_LABEL_AGREEMENT
    assert metadata_spec(logits_path).to_dict() == spec_logits.to_dict()
    # the parameters the graph uses: smp's PSPNet (encoder depth 3) never runs ResNet stages 3-4
    unused = sum(p.numel() for name, p in model.named_parameters()
                 if arch == 'pspnet' and ('encoder.layer3.' in name or 'encoder.layer4.' in name))
    assert summary.params == sum(p.numel() for p in model.parameters()) - unused
    assert summary.file_bytes == os.path.getsize(logits_path)

    # the default deployment graph: uint8 NHWC pixels in, uint8 labels out, batch 1
    spec_labels = make_spec(f'{arch}-{backbone}', input_dtype='uint8', input_layout='nhwc',
                            output_kind='labels')
    labels_path = str(tmp_path / 'labels.onnx')
    export_model(model, spec_labels, labels_path)
    labels_session = session(labels_path)
    labels = np.concatenate([labels_session.run(['labels'], {'input': frame[None]})[0]
                             for frame in frames])
    assert labels.dtype == np.uint8
    assert np.mean(labels == reference_labels) >= MIN_LABEL_AGREEMENT
    assert metadata_spec(labels_path).to_dict() == spec_labels.to_dict()


@pytest.fixture(scope='module')
def lraspp_model(frames):
    """LRASPP with real batch-norm statistics (shared by the fused-I/O tests)."""
    x = torch_normalize(frames, make_spec('lraspp'))
    return model_with_real_statistics('lraspp', None, x)


@pytest.mark.parametrize('layout', ['nchw', 'nhwc'])
@pytest.mark.parametrize('channel_order', ['rgb', 'bgr'])
def test_fused_uint8_labels_graph_equals_torch_normalize_argmax(
        layout, channel_order, lraspp_model, frames, tmp_path):
    """Raw uint8 pixels in any layout/order give torch's normalize + argmax labels."""
    spec = make_spec('lraspp', input_dtype='uint8', input_layout=layout,
                     channel_order=channel_order, output_kind='labels')
    path = str(tmp_path / 'fused.onnx')
    export_model(lraspp_model, spec, path)
    # a dark frame as well: scaling is by dtype (x / 255), never by the frame's content
    inputs_rgb = np.concatenate([frames, frames[:1] // 16])
    with torch.no_grad():
        expected = lraspp_model(torch_normalize(inputs_rgb, spec)).argmax(1).numpy()
    fed = inputs_rgb[..., ::-1] if channel_order == 'bgr' else inputs_rgb
    if layout == 'nchw':
        fed = fed.transpose(0, 3, 1, 2)
    sess = session(path)
    graph_input = sess.get_inputs()[0]
    assert graph_input.type == 'tensor(uint8)'
    assert graph_input.shape == ([1, HEIGHT, WIDTH, 3] if layout == 'nhwc'
                                 else [1, 3, HEIGHT, WIDTH])
    got = np.concatenate([sess.run(None, {'input': np.ascontiguousarray(f[None])})[0]
                          for f in fed])
    assert got.shape == expected.shape
    assert np.mean(got == expected) >= MIN_LABEL_AGREEMENT


def test_float_nhwc_bgr_logits_graph(lraspp_model, frames, tmp_path):
    """Float NHWC BGR input is transposed and reordered inside the graph."""
    spec = make_spec('lraspp', input_layout='nhwc', channel_order='bgr')
    path = str(tmp_path / 'float_nhwc_bgr.onnx')
    export_model(lraspp_model, spec, path)
    x = torch_normalize(frames[:2], spec)
    with torch.no_grad():
        expected = lraspp_model(x).numpy()
    fed = np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1)[..., ::-1])
    sess = session(path)
    got = np.concatenate([sess.run(['logits'], {'input': f[None]})[0] for f in fed])
    assert np.abs(got - expected).max() < LOGITS_TOLERANCE


def test_metadata_and_producer(labels_model):
    """The conftest model carries its spec and producer info and passes onnx.checker."""
    proto = onnx.load(labels_model)
    onnx.checker.check_model(proto, full_check=True)
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    spec = ModelSpec.from_json(metadata[METADATA_KEY], labels_model)
    assert spec.output_kind == 'labels' and spec.input_dtype == 'uint8'
    assert spec.class_names == load_class_table('camvid').class_names
    assert spec.drivable_classes == ['Road']
    assert proto.producer_name == 'seg_perception'
    assert [o.name for o in proto.graph.output] == ['labels']


def test_dynamic_batch_labels(lraspp_model, frames, tmp_path):
    """A dynamic-batch graph labels a batch like it labels each frame."""
    spec = make_spec('lraspp', input_dtype='uint8', input_layout='nhwc', output_kind='labels')
    path = str(tmp_path / 'dynamic.onnx')
    export_model(lraspp_model, spec, path, dynamic=True)
    sess = session(path)
    batch = sess.run(None, {'input': frames[:3]})[0]
    single = np.concatenate([sess.run(None, {'input': f[None]})[0] for f in frames[:3]])
    assert batch.shape == (3, HEIGHT, WIDTH)
    assert np.mean(batch == single) >= MIN_LABEL_AGREEMENT


def test_class_count_mismatch_leaves_no_file(lraspp_model, tmp_path):
    """A spec with another class count than the model fails before writing anything."""
    table = load_class_table('camvid')
    spec = make_spec('lraspp', classes=table.classes[:5], drivable_classes=['Road'])
    path = tmp_path / 'wrong.onnx'
    with pytest.raises(ExportError, match=r'5 classes'):
        export_model(lraspp_model, spec, str(path))
    assert list(tmp_path.iterdir()) == []


def test_failed_export_keeps_existing_file(lraspp_model, tmp_path):
    """A failed export leaves an existing model file untouched and no temporary file."""
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'previous model')
    table = load_class_table('camvid')
    spec = make_spec('lraspp', classes=table.classes[:5], drivable_classes=['Road'])
    with pytest.raises(ExportError):
        export_model(lraspp_model, spec, str(path))
    assert path.read_bytes() == b'previous model'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.onnx']


@pytest.mark.parametrize('target,message', [
    ('missing_dir/model.onnx', 'does not exist'),
    ('.', 'is a directory'),
])
def test_bad_output_path(target, message, lraspp_model, tmp_path):
    """Missing directories and directory paths are refused up front."""
    with pytest.raises(ExportError, match=message):
        export_model(lraspp_model, make_spec('lraspp'), str(tmp_path / target))


def test_unwritable_output_directory(lraspp_model):
    """An unwritable directory is refused up front."""
    # /sys refuses new files even for root, where permission bits would not
    with pytest.raises(ExportError, match='not writable'):
        export_model(lraspp_model, make_spec('lraspp'), '/sys/model.onnx')


@pytest.mark.parametrize('opset', [17, 18])
def test_fused_labels_and_confidence_equal_the_logits_path(lraspp_model, frames, tmp_path,
                                                           opset):
    """labels_confidence: uint8 labels and softmax-max x 255 from one graph, no float output."""
    from seg_perception.core import Segmenter
    logits_path, fused_path = str(tmp_path / 'logits.onnx'), str(tmp_path / 'fused.onnx')
    export_model(lraspp_model, make_spec('lraspp', input_dtype='uint8', input_layout='nhwc'),
                 logits_path, opset=opset)
    fused = make_spec('lraspp', input_dtype='uint8', input_layout='nhwc',
                      output_kind='labels_confidence')
    export_model(lraspp_model, fused, fused_path, opset=opset)
    outputs = session(fused_path).get_outputs()
    assert [(o.name, o.type, o.shape) for o in outputs] == [
        ('labels_confidence', 'tensor(uint8)', [1, 2, HEIGHT, WIDTH])]
    assert fused.gives_confidence and metadata_spec(fused_path).output_kind == 'labels_confidence'
    with Segmenter(logits_path) as reference, Segmenter(fused_path) as segmenter:
        for frame in frames[:3]:
            want = reference.process(frame, confidence=True)
            got = segmenter.process(frame, confidence=True)
            assert np.mean(got.labels == want.labels) >= MIN_LABEL_AGREEMENT
            difference = np.abs(got.confidence.astype(int) - want.confidence.astype(int))
            assert got.confidence.dtype == np.uint8 and difference.max() <= 1
            # an untrained model: at least 1/11 everywhere, and not one constant value
            assert want.confidence.min() >= 255 // 11 and np.ptp(want.confidence) > 5
            assert segmenter.process(frame).confidence is None  # only when asked


def test_half_export_computes_in_fp16_and_keeps_the_labels(lraspp_model, frames, tmp_path):
    """--half: fp16 weights inside, the same uint8 input and labels outside (for TensorRT 11)."""
    from seg_perception.core import Segmenter
    spec = make_spec('lraspp', input_dtype='uint8', input_layout='nhwc', output_kind='labels')
    full, half = str(tmp_path / 'fp32.onnx'), str(tmp_path / 'fp16.onnx')
    export_model(lraspp_model, spec, full)
    summary = export_model(lraspp_model, spec, half, half=True)
    assert summary.precision == 'fp16' and 'fp16' in summary.line()
    graph = onnx.load(half).graph
    kinds = {onnx.TensorProto.DataType.Name(t.data_type) for t in graph.initializer
             if len(t.dims) == 4 and not t.name.startswith('seg_perception_')}  # conv weights
    assert kinds == {'FLOAT16'}
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.UINT8]
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    with Segmenter(full) as reference, Segmenter(half) as segmenter:
        for frame in frames[:3]:
            assert np.mean(segmenter.process(frame).labels ==
                           reference.process(frame).labels) >= 0.99
    with pytest.raises(ExportError, match='exclude each other'):
        export_model(lraspp_model, spec, half, half=True, quantizer=lambda core, s: (core, {}))
