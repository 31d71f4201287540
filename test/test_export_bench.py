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

"""``seg-perception bench models``: the table and JSON it produces (no timing asserts)."""

import json
import os

import pytest

from seg_perception.tools import cli

FAST = ['--size', '128x96', '--repeats', '1', '--warmup', '0', '--calib-count', '2',
        '--eval-count', '3']


def test_bench_architecture_and_onnx_file(labels_model, tmp_path, capsys):
    """An architecture gets torch/fp32/int8 columns and mIoU; an .onnx file gets ORT only."""
    report = tmp_path / 'bench.json'
    code = cli.main(['bench', 'models', 'pspnet:resnet18', labels_model, '--rounds', '2',
                     '--json', str(report)] + FAST)
    out = capsys.readouterr().out
    assert code == 0
    assert '| model | input WxH | torch eager ms | ORT fp32 ms | ORT int8 ms |' in out
    results = json.loads(report.read_text())['results']
    assert [r['model'] for r in results] == ['pspnet-resnet18', 'lraspp_labels.onnx']
    arch, onnx_file = results
    assert arch['size'] == '128x96'
    for key in ('torch_ms', 'ort_fp32_ms', 'ort_int8_ms'):
        assert arch[key] > 0
    assert 0.0 <= arch['int8_label_agreement'] <= 1.0
    # mIoU against the CamVid sample labels, for both precisions
    assert arch['eval_frames'] == 3
    assert 0.0 <= arch['miou_fp32'] <= 1.0 and 0.0 <= arch['miou_int8'] <= 1.0
    # an fp32 file is timed in the fp32 column, at the spec's input size
    assert onnx_file['ort_fp32_ms'] > 0 and 'torch_ms' not in onnx_file
    assert 'ort_int8_ms' not in onnx_file and onnx_file['size'] == '128x96'
    # and the whole Segmenter.process of a camera frame, for the frame-rate target
    assert onnx_file['segmenter_ms'] > 0 and 'segmenter_ms' not in arch
    assert out.rstrip().endswith(f"| {onnx_file['segmenter_ms']:.1f} |")
    assert f"| pspnet-resnet18 | 128x96 | {arch['torch_ms']:.1f} |" in out


def test_bench_bad_input(tmp_path, capsys):
    """Unknown architectures, missing files and misused weights are one-line errors."""
    assert cli.main(['bench', 'models', 'segformer'] + FAST) == 1
    assert "unknown architecture 'segformer'" in capsys.readouterr().err
    assert cli.main(['bench', 'models', str(tmp_path / 'none.onnx')] + FAST) == 1
    assert 'none.onnx: model file not found' in capsys.readouterr().err
    assert cli.main(['bench', 'models', 'lraspp', 'unet', '--weights', 'x.pt'] + FAST) == 1
    assert '--weights needs exactly one architecture' in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:  # --eval takes two folders
        cli.main(['bench', 'models', 'lraspp', '--eval', str(tmp_path)] + FAST)
    assert stopped.value.code == 2


def test_bench_an_int8_file_in_the_int8_column(tmp_path, capsys):
    """The bundled INT8 QDQ model is timed as INT8, not as fp32."""
    int8 = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models',
                        'camvid_lraspp_int8.onnx')
    report = tmp_path / 'bench.json'
    assert cli.main(['bench', 'models', int8, '--json', str(report)] + FAST) == 0
    row = json.loads(report.read_text())['results'][0]
    assert row['ort_int8_ms'] > 0 and 'ort_fp32_ms' not in row and row['size'] == '480x360'
