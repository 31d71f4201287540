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
``seg-perception export`` end to end: summary, INT8 calibration, and every bad input.

The command runs in-process through ``cli.main`` (as the console script does) so the suite does
not pay a torch import per case; one test runs the installed console script itself.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import SAMPLES
from seg_perception.core.spec import load_spec
from seg_perception.tools import cli

SMALL = ['--height', '96', '--width', '128', '--no-flops']
SAMPLE_IMAGES = os.path.join(SAMPLES, 'images')


def run_export(arguments, capsys):
    """Run ``seg-perception export`` in-process; return (exit code, stdout, stderr)."""
    code = cli.main(['export'] + [str(a) for a in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    """Assert stderr is exactly one error line containing every fragment."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('seg-perception export: error: ')
    for fragment in fragments:
        assert fragment in lines[0]


def spec_of(path: str):
    """Return the spec stored in a model's metadata."""
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return load_spec(path, session.get_modelmeta().custom_metadata_map)


def test_export_defaults_and_summary(tmp_path, capsys):
    """Defaults give uint8 NHWC in, uint8 labels out; the summary names all it should."""
    out = tmp_path / 'lraspp.onnx'
    code, stdout, _ = run_export(['--arch', 'lraspp', '--height', '96', '--width', '128',
                                  '--out', out], capsys)
    assert code == 0
    summary = stdout.strip().splitlines()[-1]
    for fragment in ('lraspp-mobilenet_v3_large', 'M params', 'GFLOPs', 'output labels',
                     'MB'):
        assert fragment in summary
    spec = spec_of(str(out))
    assert (spec.input_dtype, spec.input_layout, spec.output_kind) == ('uint8', 'nhwc',
                                                                       'labels')
    assert (spec.input_height, spec.input_width, spec.dataset) == (96, 128, 'camvid')
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    labels = session.run(None, {'input': np.zeros((1, 96, 128, 3), np.uint8)})[0]
    assert labels.shape == (1, 96, 128) and labels.dtype == np.uint8
    assert sorted(os.listdir(tmp_path)) == ['lraspp.onnx']


def test_export_with_trained_weights(tmp_path, capsys):
    """A checkpoint is loaded: the exported logits are the checkpoint's, not a fresh init."""
    from seg_perception.models.zoo import create_model
    torch.manual_seed(3)
    model = create_model('unet', 'resnet18', num_classes=11).eval()
    checkpoint = tmp_path / 'unet.pt'
    torch.save({'model': model.state_dict()}, checkpoint)
    out = tmp_path / 'unet.onnx'
    code, _, _ = run_export(['--arch', 'unet', '--weights', checkpoint, '--output', 'logits',
                             '--input', 'float32', '--layout', 'nchw', '--out', out] + SMALL,
                            capsys)
    assert code == 0
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    got = session.run(None, {'input': x.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-3


def test_export_int8_reports_agreement(tmp_path, capsys):
    """INT8 with folder calibration: QDQ graph, runs, agreement reported as a percentage."""
    out = tmp_path / 'int8.onnx'
    code, stdout, _ = run_export(['--arch', 'lraspp', '--quantize', 'int8', '--calib',
                                  SAMPLE_IMAGES, '--calib-count', '3', '--out', out] + SMALL,
                                 capsys)
    assert code == 0
    summary = stdout.strip().splitlines()[-1]
    assert 'int8' in summary and 'on 3 calibration images' in summary
    agreement = float(summary.split('label agreement ')[1].split(' %')[0])
    assert 0.0 <= agreement <= 100.0
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear', 'ArgMax'} <= ops
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    labels = session.run(None, {'input': np.zeros((1, 96, 128, 3), np.uint8)})[0]
    assert labels.shape == (1, 96, 128)
    assert spec_of(str(out)).output_kind == 'labels'


def test_console_script_runs(tmp_path):
    """The installed ``seg-perception`` entry point exports and exits 0."""
    script = shutil.which('seg-perception') or os.path.join(os.path.dirname(sys.executable),
                                                            'seg-perception')
    out = tmp_path / 'lraspp.onnx'
    result = subprocess.run([script, 'export', '--arch', 'lraspp', '--out', str(out)] + SMALL,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.exists() and 'lraspp-mobilenet_v3_large' in result.stdout


# -- bad input: exit 1 with one line, exit 2 for usage, never a file left behind -----------------
@pytest.mark.parametrize('arguments,fragments', [
    (['--arch', 'segformer'], ["unknown architecture 'segformer'", 'deeplabv3plus', 'lraspp']),
    (['--arch', 'deeplabv3plus', '--backbone', 'vgg16'],
     ["unknown backbone 'vgg16'", 'mobilenet_v2']),
    (['--arch', 'unet', '--height', '100', '--width', '100'],
     ['multiples of 32', 'nearest valid size is 96x96']),
])
def test_bad_names_and_sizes(arguments, fragments, tmp_path, capsys):
    """Unknown names list the choices; invalid sizes name the nearest valid one."""
    out = tmp_path / 'model.onnx'
    code, _, err = run_export(arguments + ['--out', out], capsys)
    assert code == 1
    assert_one_line_error(err, *fragments)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('trained_as,fragments', [
    (('lraspp', 5), ['fit lraspp/mobilenet_v3_large with 11 classes', '4 shape mismatches',
                     '(5, 40, 1, 1) vs (11, 40, 1, 1)']),
    (('unet', 11), ['missing keys', 'unexpected keys', '(+']),
])
def test_wrong_checkpoint(trained_as, fragments, tmp_path, capsys):
    """A checkpoint of another class count or architecture names the mismatching keys."""
    from seg_perception.models.zoo import create_model
    arch, classes = trained_as
    checkpoint = tmp_path / 'other.pt'
    torch.save(create_model(arch, num_classes=classes).state_dict(), checkpoint)
    out = tmp_path / 'model.onnx'
    code, _, err = run_export(['--arch', 'lraspp', '--weights', checkpoint, '--out', out]
                              + SMALL, capsys)
    assert code == 1
    assert_one_line_error(err, str(checkpoint), *fragments)
    assert len(err) < 600  # the keys are summarized, never a state_dict dump
    assert sorted(os.listdir(tmp_path)) == ['other.pt']


def test_missing_and_corrupt_checkpoint(tmp_path, capsys):
    """A missing or unreadable checkpoint is one line naming the file."""
    out = tmp_path / 'model.onnx'
    code, _, err = run_export(['--arch', 'lraspp', '--weights', tmp_path / 'none.pt',
                               '--out', out] + SMALL, capsys)
    assert code == 1
    assert_one_line_error(err, 'none.pt', 'not found')
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint')
    code, _, err = run_export(['--arch', 'lraspp', '--weights', garbage, '--out', out]
                              + SMALL, capsys)
    assert code == 1
    assert_one_line_error(err, 'garbage.pt', 'not a readable torch checkpoint')
    assert not out.exists()


@pytest.mark.parametrize('target,fragment', [
    ('/sys/model.onnx', 'not writable'),
    ('{tmp}/no/such/dir/model.onnx', 'does not exist'),
    ('{tmp}', 'is a directory'),
])
def test_unwritable_output(target, fragment, tmp_path, capsys):
    """Output paths that cannot be written fail before any work, naming the path."""
    out = target.format(tmp=tmp_path)
    code, _, err = run_export(['--arch', 'lraspp', '--out', out] + SMALL, capsys)
    assert code == 1
    assert_one_line_error(err, out, fragment)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('classes_yaml,fragments', [
    ('name: bad\nclasses:\n  - {id: 0, name: road, color: [1, 2, 3]}\n'
     '  - {id: 0, name: car, color: [4, 5, 6]}\n', ['duplicate ids [0]']),
    ('name: bad\nclasses:\n  - {id: 0, name: road, color: [1, 2, 300]}\n',
     ['color [1, 2, 300]', '0..255']),
    ('name: bad\nclasses: [\n', ['invalid YAML']),
])
def test_bad_classes_file(classes_yaml, fragments, tmp_path, capsys):
    """A class table with duplicate ids, colors out of range or bad YAML names the file."""
    classes = tmp_path / 'classes.yaml'
    classes.write_text(classes_yaml)
    out = tmp_path / 'model.onnx'
    code, _, err = run_export(['--arch', 'lraspp', '--classes', classes, '--out', out]
                              + SMALL, capsys)
    assert code == 1
    assert_one_line_error(err, str(classes), *fragments)
    assert not out.exists()


def lraspp_checkpoint_and_bias(tmp_path, seed: int, bias_yaml: str):
    """Save a seeded random LRASPP checkpoint and a class-bias file; return (model, both)."""
    from seg_perception.models.zoo import create_model
    torch.manual_seed(seed)
    model = create_model('lraspp', num_classes=11).eval()
    checkpoint = tmp_path / 'lraspp.pt'
    torch.save(model.state_dict(), checkpoint)
    bias = tmp_path / 'bias.yaml'
    bias.write_text(bias_yaml)
    return model, checkpoint, bias


def test_class_bias_offsets_the_exported_logits(tmp_path, capsys):
    """--class-bias adds each named class's offset to its logits; the model records them."""
    _, checkpoint, bias = lraspp_checkpoint_and_bias(
        tmp_path, 5, '# offsets\nRoad: 0.75\nPedestrian: -1.5\n')
    exported = {}
    for name, extra in (('plain', []), ('biased', ['--class-bias', bias])):
        out = tmp_path / f'{name}.onnx'
        code, stdout, _ = run_export(['--arch', 'lraspp', '--weights', checkpoint, '--output',
                                      'logits', '--input', 'float32', '--layout', 'nchw',
                                      '--out', out] + extra + SMALL, capsys)
        assert code == 0
        exported[name] = out
    assert f'class bias from {bias}' in stdout.strip().splitlines()[-1]
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32)
    logits = {name: ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
              .run(None, {'input': x})[0] for name, path in exported.items()}
    offsets = np.zeros(11, np.float32)
    offsets[3], offsets[9] = 0.75, -1.5  # Road, Pedestrian in the CamVid table
    np.testing.assert_allclose(logits['biased'], logits['plain'] + offsets[None, :, None, None],
                               atol=1e-4)
    metadata = onnx.load(str(exported['biased'])).metadata_props
    recorded = json.loads({p.key: p.value for p in metadata}['seg_perception.class_bias'])
    assert recorded['Road'] == 0.75 and recorded['Pedestrian'] == -1.5
    assert recorded['Sky'] == 0.0 and len(recorded) == 11
    assert 'seg_perception.class_bias' not in {
        p.key for p in onnx.load(str(exported['plain'])).metadata_props}


def test_output_downsample_stops_the_final_upsampling_at_a_fraction(tmp_path, capsys):
    """
    --output-downsample 2: the logits are the network's, upsampled to half the input size.

    The reference is torchvision's LRASPP run piece by piece with the final interpolation to
    48x64 instead of 96x128, plus the class bias that sits between that upsampling and the
    logits; the fused labels + confidence output is the same size.
    """
    import torch.nn.functional as F

    model, checkpoint, bias = lraspp_checkpoint_and_bias(tmp_path, 7, 'Road: 0.5\n')
    logits_path, fused_path = tmp_path / 'logits.onnx', tmp_path / 'fused.onnx'
    common = ['--arch', 'lraspp', '--weights', checkpoint, '--output-downsample', 2,
              '--class-bias', bias] + SMALL
    code, stdout, _ = run_export(common + ['--output', 'logits', '--input', 'float32',
                                           '--layout', 'nchw', '--out', logits_path], capsys)
    assert code == 0
    assert 'output logits at 48x64' in stdout.strip().splitlines()[-1]
    code, _, _ = run_export(common + ['--output', 'labels_confidence', '--dynamic',
                                      '--out', fused_path], capsys)
    assert code == 0
    x = torch.randn(1, 3, 96, 128)
    network = model.inner
    with torch.no_grad():
        coarse = network.classifier(network.backbone(x))
        expected = F.interpolate(coarse, size=(48, 64), mode='bilinear', align_corners=False)
    expected[:, 3] += 0.5  # Road
    got = ort.InferenceSession(str(logits_path), providers=['CPUExecutionProvider']).run(
        None, {'input': x.numpy()})[0]
    assert got.shape == (1, 11, 48, 64)
    assert np.abs(got - expected.numpy()).max() < 1e-3
    session = ort.InferenceSession(str(fused_path), providers=['CPUExecutionProvider'])
    fused = session.run(None, {'input': np.zeros((3, 96, 128, 3), np.uint8)})[0]
    assert fused.shape == (3, 2, 48, 64) and fused.dtype == np.uint8
    assert [d.dim_value for d in onnx.load(str(fused_path)).graph.output[0]
            .type.tensor_type.shape.dim][1:] == [2, 48, 64]


@pytest.mark.parametrize('arguments,code,fragments', [
    (['--arch', 'lraspp', '--output-downsample', '3'], 2,
     ['--output-downsample 3 does not divide the input size 96x128']),
    (['--arch', 'lraspp', '--output-downsample', '0'], 2, ['--output-downsample']),
    (['--arch', 'lraspp', '--output-downsample', '16'], 1,
     ['6x8 is smaller than the 12x16 map', 'nothing would be saved']),
    (['--arch', 'unet', '--output-downsample', '2'], 1,
     ['unet-resnet18: --output-downsample needs logits that come from a final upsampling',
      'Conv']),
])
def test_bad_output_downsample(arguments, code, fragments, tmp_path, capsys):
    """A divisor that does not fit the size or the network is refused in one line, no file."""
    out = tmp_path / 'model.onnx'
    try:
        got = cli.main(['export'] + arguments + ['--out', str(out)] + SMALL)
    except SystemExit as raised:  # argparse's own type checks exit from inside parse_args
        got = raised.code
    assert got == code
    errors = [line for line in capsys.readouterr().err.splitlines() if 'error' in line]
    assert len(errors) == 1 and errors[0].startswith('seg-perception export: error: ')
    for fragment in fragments:
        assert fragment in errors[0]
    assert not out.exists()


@pytest.mark.parametrize('bias_yaml,fragments', [
    ('Roadway: 1.0\n', ["'Roadway' is not a class", 'Road']),
    ('Road: high\n', ['offset of Road must be a finite number', "'high'"]),
    ('Road: .nan\n', ['offset of Road must be a finite number']),
    ('Road: true\n', ['offset of Road must be a finite number']),
    ('- Road\n', ['a mapping of class name to logit offset']),
    ('', ['a mapping of class name to logit offset']),
    ('Road: [\n', ['invalid YAML']),
    (None, ['class-bias file not found']),
])
def test_bad_class_bias_file(bias_yaml, fragments, tmp_path, capsys):
    """A class-bias file naming an unknown class or holding no numbers fails in one line."""
    bias = tmp_path / 'bias.yaml'
    if bias_yaml is not None:
        bias.write_text(bias_yaml)
    out = tmp_path / 'model.onnx'
    code, _, err = run_export(['--arch', 'lraspp', '--class-bias', bias, '--out', out]
                              + SMALL, capsys)
    assert code == 1
    assert_one_line_error(err, str(bias), *fragments)
    assert not out.exists()


def test_empty_calibration_folder(tmp_path, capsys):
    """INT8 with a folder holding no images fails with one line naming the folder."""
    empty = tmp_path / 'empty'
    empty.mkdir()
    out = tmp_path / 'model.onnx'
    code, _, err = run_export(['--arch', 'lraspp', '--quantize', 'int8', '--calib', empty,
                               '--out', out] + SMALL, capsys)
    assert code == 1
    assert_one_line_error(err, str(empty), 'no images')
    assert not out.exists()


@pytest.mark.parametrize('arguments,fragment', [
    (['--arch', 'lraspp', '--quantize', 'int8'], '--quantize int8 needs --calib'),
    (['--arch', 'lraspp', '--calib', SAMPLE_IMAGES], '--calib is only used with'),
    (['--arch', 'lraspp', '--output', 'probabilities'], 'invalid choice'),
    (['--arch', 'lraspp', '--height', 'tall'], "'tall' is not an integer"),
])
def test_usage_errors_exit_2(arguments, fragment, tmp_path, capsys):
    """Bad usage exits 2 with a one-line message (argparse's, or a UsageError's)."""
    out = tmp_path / 'model.onnx'
    try:
        code = cli.main(['export'] + arguments + ['--out', str(out)])
    except SystemExit as raised:  # argparse's own checks exit from inside parse_args
        code = raised.code
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()
