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

"""Segmenter end to end with real exported models on real CamVid frames, and its bad inputs."""

import json
import os
import shutil
import subprocess
import sys

from core_images import make_encoded
from core_models import export_nearest_color_model, reference_labels
import cv2
import numpy as np
import onnx
import pytest

from seg_perception.core import (InputError, ModelLoadError, Segmenter, SegResult, SpecError)
from seg_perception.core import resources
from seg_perception.core.drivable import DrivableConfig
from seg_perception.core.preprocess import Geometry
from seg_perception.core.segmenter import STAGES
from seg_perception.core.spec import METADATA_KEY


@pytest.fixture(scope='module')
def color_models(tmp_path_factory):
    """Export the nearest-color model as uint8/labels/NCHW/RGB and float/logits/NHWC/BGR."""
    folder = tmp_path_factory.mktemp('color_models')
    return (export_nearest_color_model(folder / 'color_labels.onnx', input_dtype='uint8',
                                       output_kind='labels'),
            export_nearest_color_model(folder / 'color_logits.onnx', input_dtype='float32',
                                       output_kind='logits', channel_order='bgr',
                                       input_layout='nhwc'))


@pytest.fixture(scope='module')
def color_segmenters(color_models):
    """Return Segmenters on the two nearest-color models."""
    segmenters = [Segmenter(path, num_threads=1) for path in color_models]
    yield segmenters
    for segmenter in segmenters:
        segmenter.close()


@pytest.fixture(scope='module')
def labels_segmenter(labels_model):
    """Return a Segmenter on the labels-output test model."""
    with Segmenter(labels_model, num_threads=1) as segmenter:
        yield segmenter


@pytest.fixture(scope='module')
def logits_segmenter(logits_model):
    """Return a Segmenter on the logits-output test model."""
    with Segmenter(logits_model, num_threads=1) as segmenter:
        yield segmenter


def test_labels_at_the_image_size(labels_segmenter, camvid_samples):
    for _, rgb, _ in camvid_samples[:3]:
        for image in (rgb, np.ascontiguousarray(rgb[:250, :333])):
            result = labels_segmenter.process(image)
            assert isinstance(result, SegResult)
            assert result.labels.shape == image.shape[:2] and result.labels.dtype == np.uint8
            assert result.drivable.shape == image.shape[:2]
            assert set(np.unique(result.drivable)) <= {0, 255}
            assert np.isin(result.labels, list(range(11)) + [255]).all()
            assert result.confidence is None and result.color is None and result.overlay is None
            assert list(result.timings) == list(STAGES)
            assert all(value >= 0 for value in result.timings.values())
            assert result.timings['total'] >= result.timings['infer']


def test_on_labels_gets_the_labels_before_the_drivable_mask(camvid_samples):
    """The node publishes ~/labels from on_labels, before the drivable mask is computed."""
    _, rgb, _ = camvid_samples[1]
    seen = []
    with Segmenter() as segmenter:  # the bundled model: the road is a large region here
        assert segmenter.process(rgb, 'rgb8').drivable.any()

        def on_labels(labels):
            seen.append(labels.copy())
            segmenter.drivable_config = DrivableConfig(min_area=0.99)  # drops every region

        result = segmenter.process(rgb, 'rgb8', on_labels=on_labels)
    assert len(seen) == 1 and np.array_equal(seen[0], result.labels)
    assert not result.drivable.any()  # the mask was made after the callback


def test_labels_match_a_numpy_reference(color_segmenters, camvid_samples):
    for segmenter in color_segmenters:
        for _, rgb, _ in camvid_samples[:4]:
            labels = segmenter.process(rgb).labels
            expected = reference_labels(rgb, segmenter.spec)
            assert len(np.unique(expected)) >= 5  # a test that a constant output cannot pass
            assert (labels == expected).mean() >= 0.995


def test_same_labels_for_every_channel_order(color_segmenters, camvid_samples):
    for segmenter in color_segmenters:
        for _, rgb, _ in camvid_samples[:2]:
            reference = segmenter.process(rgb, 'rgb8')
            for encoding in ('bgr8', 'rgba8', 'bgra8'):
                result = segmenter.process(make_encoded(rgb, encoding), encoding)
                np.testing.assert_array_equal(result.labels, reference.labels)
                np.testing.assert_array_equal(result.drivable, reference.drivable)
            # the test can fail: the same pixels under the wrong order give other labels
            swapped = segmenter.process(make_encoded(rgb, 'bgr8'), 'rgb8')
            assert (swapped.labels != reference.labels).mean() > 0.05


@pytest.mark.parametrize('encoding', ['mono8', 'mono16', 'rgb16', 'yuv422', 'yuyv',
                                      'bayer_rggb8', 'bayer_grbg16'])
def test_other_encodings_run_end_to_end(color_segmenters, camvid_samples, encoding):
    rgb = camvid_samples[0][1]
    segmenter = color_segmenters[0]
    reference = segmenter.process(rgb).labels
    result = segmenter.process(make_encoded(rgb, encoding), encoding, color=True)
    assert result.labels.shape == rgb.shape[:2] and result.color.shape == rgb.shape
    if not encoding.startswith('mono'):  # the color survives demosaicing and 4:2:2 chroma
        assert (result.labels == reference).mean() >= 0.9


def test_16bit_input_matches_8bit(color_segmenters, camvid_samples):
    rgb = camvid_samples[4][1]
    for segmenter in color_segmenters:
        narrow = segmenter.process(rgb, 'rgb8').labels
        wide = segmenter.process(make_encoded(rgb, 'rgb16'), 'rgb16').labels
        assert (narrow == wide).mean() >= 0.99


def test_confidence_color_and_overlay_when_asked(logits_segmenter, labels_segmenter,
                                                 camvid_samples):
    rgb = camvid_samples[1][1]
    result = logits_segmenter.process(rgb, confidence=True, color=True, overlay=True)
    assert result.confidence.shape == rgb.shape[:2] and result.confidence.dtype == np.uint8
    assert result.confidence.min() >= 255 // 11  # a softmax maximum is at least 1 / classes
    np.testing.assert_array_equal(result.color, logits_segmenter.spec.palette()[result.labels])
    assert result.overlay.shape == rgb.shape and result.overlay.dtype == np.uint8
    assert labels_segmenter.process(rgb, confidence=True).confidence is None


def test_labels_and_logits_models_agree(color_segmenters, camvid_samples):
    """Same weights: fused uint8 normalize + argmax (NCHW RGB) vs float NHWC BGR + numpy argmax."""
    fused, unfused = color_segmenters
    for _, rgb, _ in camvid_samples[:3]:
        assert (fused.process(rgb).labels == unfused.process(rgb).labels).mean() >= 0.995


def test_drivable_classes_can_change_per_call(color_models, labels_model, camvid_samples):
    config = DrivableConfig(connect_to_bottom=False, min_area=0.0, close_size=0.0,
                            open_size=0.0)
    with Segmenter(color_models[0], drivable_config=config) as segmenter:
        rgb = camvid_samples[0][1]
        labels = segmenter.process(rgb).labels
        for names in (['Road'], ['Road', 'Pavement'], [], [segmenter.spec.class_names[
                int(np.bincount(labels.ravel()).argmax())]]):
            result = segmenter.process(rgb, drivable_classes=names)
            ids = segmenter.spec.class_ids(names)
            np.testing.assert_array_equal(result.drivable > 0, np.isin(result.labels, ids))
        segmenter.drivable_classes = ['Car']
        assert segmenter.describe()['drivable_classes'] == ['Car']
        with pytest.raises(SpecError, match="unknown class name.*'Lawn'"):
            segmenter.process(rgb, drivable_classes=['Lawn'])
        with pytest.raises(SpecError, match='Lawn'):
            Segmenter(labels_model, drivable_classes=['Lawn'])


def test_confidence_gate_needs_logits(color_models, camvid_samples, caplog):
    gate = DrivableConfig(min_confidence=250, close_size=0.0, open_size=0.0, min_area=0.0,
                          connect_to_bottom=False)
    rgb = camvid_samples[0][1]
    labels_model, logits_model = color_models
    with caplog.at_level('WARNING', logger='seg_perception'):
        with Segmenter(labels_model, drivable_config=gate, drivable_classes=['Sky']) as fused:
            ungated = fused.process(rgb)
    assert any('ignores min_confidence=250' in r.getMessage() for r in caplog.records)
    with Segmenter(logits_model, drivable_config=gate, drivable_classes=['Sky']) as segmenter:
        gated = segmenter.process(rgb, confidence=True)
    sky = gated.labels == 0
    assert sky.any() and (ungated.drivable[ungated.labels == 0] == 255).all()
    np.testing.assert_array_equal(gated.drivable > 0, sky & (gated.confidence >= 250))
    assert (gated.drivable > 0).sum() < sky.sum()


def test_describe(labels_segmenter, labels_model):
    info = labels_segmenter.describe()
    assert info['backend'] == 'onnxruntime' and info['provider'] == 'CPUExecutionProvider'
    assert info['model_path'] == labels_model and info['num_classes'] == 11
    assert '96x128 uint8' in info['spec'] and 'labels' in info['spec']
    json.dumps(info)


def test_letterbox_spec_from_a_sidecar(color_models, tmp_path, camvid_samples):
    model = tmp_path / 'letterbox.onnx'
    shutil.copy(color_models[0], model)
    with Segmenter(color_models[0]) as reference:
        spec = reference.spec.to_dict()
    spec['resize_mode'] = 'letterbox'
    spec['drivable_classes'] = ['Road', 'Pavement']
    (tmp_path / 'letterbox.yaml').write_text(json.dumps(spec))  # JSON is YAML
    with Segmenter(str(model)) as segmenter:
        assert segmenter.spec.resize_mode == 'letterbox'
        assert segmenter.drivable_classes == ['Road', 'Pavement']
        image = np.ascontiguousarray(camvid_samples[0][1][:200])
        labels = segmenter.process(image).labels
        assert labels.shape == (200, 480)
        box = Geometry.letterbox((200, 480), (96, 128))
        expected = reference_labels(image, segmenter.spec,
                                    (box.content_height, box.content_width))
        assert (labels == expected).mean() >= 0.99


def test_bad_images_raise_input_errors(labels_segmenter, camvid_samples):
    rgb = camvid_samples[0][1]
    cases = [(rgb.astype(np.float32), 'rgb8', 'wrong_dtype'),
             (rgb[:, :, 0], 'rgb8', 'wrong_shape'),
             (rgb[:0], 'rgb8', 'empty'),
             (rgb, 'jpeg', 'unknown_encoding'),
             (None, 'rgb8', 'wrong_type')]
    for image, encoding, reason in cases:
        with pytest.raises(InputError) as caught:
            labels_segmenter.process(image, encoding)
        assert caught.value.reason == reason, str(caught.value)
    with pytest.raises(InputError, match='alpha'):
        labels_segmenter.process(rgb, overlay=True, overlay_alpha=2.0)


def strip_spec(source, target):
    """Write a copy of an ONNX model without the seg_perception spec metadata."""
    model = onnx.load(source)
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, target)


def test_model_files_that_cannot_be_used(labels_model, tmp_path):
    missing = tmp_path / 'missing.onnx'
    with pytest.raises(ModelLoadError, match=f'{missing}: ONNX model file not found'):
        Segmenter(str(missing))
    truncated = tmp_path / 'truncated.onnx'
    truncated.write_bytes(open(labels_model, 'rb').read()[:5000])
    with pytest.raises(ModelLoadError, match=f'{truncated}: not a loadable ONNX model'):
        Segmenter(str(truncated))
    bare = tmp_path / 'no_spec.onnx'
    strip_spec(labels_model, str(bare))
    with pytest.raises(SpecError, match=f'{bare}: no model spec.*no_spec.yaml'):
        Segmenter(str(bare))
    (tmp_path / 'no_spec.yaml').write_text('classes: camvid\ninput_height: 64\n')
    with pytest.raises(SpecError, match="no_spec.yaml: field 'input_width' is missing"):
        Segmenter(str(bare))
    (tmp_path / 'no_spec.yaml').write_text(
        'classes: camvid\ninput_height: 64\ninput_width: 64\ninput_dtype: uint8\n')
    with pytest.raises(SpecError, match=r'no_spec.yaml: input size 64x64.*\[1, 3, 96, 128\]'):
        Segmenter(str(bare))
    (tmp_path / 'no_spec.yaml').write_text(
        'classes: camvid\ninput_height: 96\ninput_width: 128\ninput_dtype: float32\n')
    with pytest.raises(SpecError, match="no_spec.yaml: field \"input_dtype\" is 'float32'"):
        Segmenter(str(bare))
    (tmp_path / 'no_spec.yaml').write_text(
        'classes: camvid\ninput_height: 96\ninput_width: 128\ninput_dtype: uint8\n'
        'output_kind: labels\n')
    with Segmenter(str(bare)) as segmenter:  # a valid sidecar makes the bare file usable
        assert segmenter.spec.source.endswith('no_spec.yaml')


def test_default_model_lookup(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, 'SOURCE_ROOT', str(tmp_path))
    monkeypatch.setattr(sys, 'prefix', str(tmp_path / 'prefix'))
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path / 'ament'))
    with pytest.raises(ModelLoadError, match='no bundled model; pass model_path'):
        resources.default_model_path()
    installed = tmp_path / 'prefix' / 'share' / 'seg_perception' / 'models'
    installed.mkdir(parents=True)
    (installed / 'camvid_lraspp.onnx').write_bytes(b'x')
    assert resources.default_model_path() == str(installed / 'camvid_lraspp.onnx')
    (tmp_path / 'models').mkdir()
    (tmp_path / 'models' / 'camvid_b.onnx').write_bytes(b'x')
    (tmp_path / 'models' / 'camvid_a.onnx').write_bytes(b'x')
    assert resources.default_model_path() == str(tmp_path / 'models' / 'camvid_a.onnx')


def test_importing_the_core_loads_no_ros_and_no_heavy_libraries():
    code = ('import json, sys; import seg_perception.core; from seg_perception.core import '
            'Segmenter; print(json.dumps(sorted(sys.modules)))')
    output = subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                            text=True, env=dict(os.environ)).stdout
    modules = set(json.loads(output))
    for heavy in ('rclpy', 'torch', 'onnxruntime', 'tensorrt', 'sensor_msgs', 'std_msgs'):
        assert heavy not in modules, heavy


def test_core_sources_never_import_ros():
    import ast
    core = os.path.dirname(os.path.abspath(resources.__file__))
    for folder, _, files in os.walk(core):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(folder, name)
            tree = ast.parse(open(path, encoding='utf-8').read(), path)
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
                for module in names:
                    top = module.split('.')[0]
                    assert top != 'rclpy' and not top.endswith('_msgs'), f'{path}: {module}'


@pytest.mark.parametrize('dynamic', [True, False])
@pytest.mark.parametrize('output_kind', ['labels', 'labels_confidence', 'logits'])
def test_a_batch_of_cameras_equals_one_frame_at_a_time(camvid_samples, tmp_path, dynamic,
                                                       output_kind):
    """Three cameras of different sizes in one call: each result equals its own process()."""
    from conftest import export_test_model
    path = export_test_model(tmp_path / 'model.onnx', output_kind=output_kind, dynamic=dynamic)
    rgb = [camvid_samples[i][1] for i in range(3)]
    frames = [(rgb[0], 'rgb8'), (cv2.resize(rgb[1], (640, 400))[..., ::-1].copy(), 'bgr8'),
              (cv2.resize(rgb[2], (320, 180)), 'rgb8')]
    seen, calls = [], []
    with Segmenter(path) as segmenter:
        assert segmenter.takes_batches == dynamic
        infer = segmenter.backend.infer
        segmenter.backend.infer = lambda tensor: calls.append(tensor.shape[0]) or infer(tensor)
        batch = segmenter.process_batch(frames, confidence=True,
                                        on_labels=lambda i, labels: seen.append(i))
        segmenter.backend.infer = infer
        assert calls == ([3] if dynamic else [1, 1, 1])  # one call for the whole batch
        single = [segmenter.process(image, encoding, confidence=True)
                  for image, encoding in frames]
    assert seen == [0, 1, 2]
    for (image, _), got, want in zip(frames, batch, single):
        assert got.labels.shape == image.shape[:2]
        assert np.mean(got.labels == want.labels) >= 0.999
        assert np.array_equal(got.drivable, want.drivable) or \
            np.mean(got.drivable == want.drivable) >= 0.999
        assert (got.confidence is None) == (output_kind == 'labels')
        assert got.timings['infer'] > 0


def test_a_model_that_predicts_at_half_size_gives_labels_at_the_camera_size(camvid_samples,
                                                                            tmp_path):
    """
    An ``--output-downsample 2`` model: labels, mask and confidence at each camera's size.

    They are the model's own half-size labels resized with nearest sampling (never blended),
    alone and in a batch of cameras of different sizes. The model is the nearest-color one
    run at 1/4 of the input and upsampled, as segmentation networks end, so its labels vary
    over the frame and the export has a final upsampling to stop at half the size.
    """
    import onnxruntime as ort
    import torch

    from core_models import nearest_color_model, palette_spec
    from seg_perception.core.postprocess import resize_nearest
    from seg_perception.models.export import export_model

    class CoarseNearestColor(torch.nn.Module):
        def __init__(self, spec) -> None:
            super().__init__()
            self.classify = nearest_color_model(spec)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            coarse = self.classify(torch.nn.functional.avg_pool2d(x, 4))
            return torch.nn.functional.interpolate(coarse, size=x.shape[2:], mode='bilinear',
                                                   align_corners=False)

    spec = palette_spec(output_kind='labels_confidence', input_layout='nhwc',
                        input_dtype='uint8')
    path = str(tmp_path / 'half.onnx')
    export_model(CoarseNearestColor(spec).eval(), spec, path, dynamic=True, output_downsample=2)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    rgb = [camvid_samples[i][1] for i in range(3)]
    frames = [(rgb[0], 'rgb8'), (cv2.resize(rgb[1], (640, 400)), 'rgb8'),
              (cv2.resize(rgb[2], (320, 180)), 'rgb8')]
    with Segmenter(path) as segmenter:
        batch = segmenter.process_batch(frames, confidence=True)
        for (image, _), got in zip(frames, batch):
            single = segmenter.process(image, confidence=True)
            model_input = cv2.resize(image, (128, 96), interpolation=cv2.INTER_LINEAR)
            output = session.run(None, {'input': model_input[None]})[0][0]
            assert output.shape == (2, 48, 64)  # the model predicts at half its 96x128 input
            expected = resize_nearest(output[0], *image.shape[:2])
            assert len(np.unique(expected)) >= 3  # a constant output could not pass
            for result in (single, got):
                assert result.labels.shape == result.confidence.shape == image.shape[:2]
                assert result.drivable.shape == image.shape[:2]
                assert np.mean(result.labels == expected) >= 0.999
                assert np.mean(result.confidence
                               == resize_nearest(output[1], *image.shape[:2])) >= 0.999


def test_batch_flags_per_frame_and_calls_split_at_max_batch(camvid_samples, tmp_path):
    """
    Per-frame flags give each frame what was asked; batches split at the backend's max_batch.

    A backend that takes at most 2 frames a call runs 5 frames as 2 + 2 + 1, with the same
    labels as one frame at a time.
    """
    from conftest import export_test_model
    path = export_test_model(tmp_path / 'dynamic.onnx', output_kind='logits',
                             input_dtype='float32', dynamic=True)
    frames = [(cv2.resize(camvid_samples[i % 3][1], (160 + 32 * i, 120 + 24 * i)), 'rgb8')
              for i in range(5)]
    calls = []
    with Segmenter(path) as segmenter:
        wants = [True, False, True, False, False]
        results = segmenter.process_batch(frames[:3], confidence=wants[:3], color=False,
                                          overlay=[False, True, False])
        assert [r.confidence is not None for r in results] == wants[:3]
        assert [r.overlay is not None for r in results] == [False, True, False]
        assert all(r.color is None for r in results)
        with pytest.raises(InputError, match='confidence must be a bool or 3 bools'):
            segmenter.process_batch(frames[:3], confidence=[True, False])
        segmenter.backend.max_batch = 2  # as a TensorRT engine built with --batch 2 reports
        assert segmenter.call_sizes(5) == [2, 2, 1]
        infer = segmenter.backend.infer
        segmenter.backend.infer = lambda tensor: calls.append(tensor.shape[0]) or infer(tensor)
        split = segmenter.process_batch(frames)
        segmenter.backend.infer = infer
        single = [segmenter.process(image, encoding).labels for image, encoding in frames]
    assert calls == [2, 2, 1]
    for (image, _), got, want in zip(frames, split, single):
        assert got.labels.shape == image.shape[:2]
        assert np.mean(got.labels == want) >= 0.999


def test_a_fixed_batch_of_n_is_padded_for_a_shorter_last_call(camvid_samples, tmp_path):
    """A model exported for exactly 2 frames runs 3 frames as 2 + (1 padded to 2)."""
    from conftest import export_test_model
    path = export_test_model(tmp_path / 'dynamic.onnx', dynamic=True)
    model = onnx.load(path)
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 2
    fixed = tmp_path / 'batch2.onnx'
    onnx.save(model, str(fixed))  # the spec is in the model's metadata
    frames = [(camvid_samples[i][1], 'rgb8') for i in range(3)]
    with Segmenter(str(fixed)) as segmenter, Segmenter(path) as reference:
        assert segmenter.backend.max_batch == 2 and segmenter.call_sizes(3) == [2, 1]
        got = segmenter.process_batch(frames)
        want = [reference.process(image, encoding).labels for image, encoding in frames]
    for result, labels in zip(got, want):
        assert np.mean(result.labels == labels) >= 0.999
