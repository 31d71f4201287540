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

"""``seg-perception build-engine``: input checks everywhere, the real build where TensorRT is."""

import importlib.util
import os

import pytest

from seg_perception.core.spec import ModelSpec
from seg_perception.tools import cli

HAS_TENSORRT = importlib.util.find_spec('tensorrt') is not None


def build_engine(arguments, capsys):
    """Run ``seg-perception build-engine`` in-process; return (exit code, stdout, stderr)."""
    code = cli.main(['build-engine'] + [str(a) for a in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """Return the single error line of stderr (fails if there are more)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('seg-perception build-engine: error: ')
    return lines[0]


@pytest.mark.skipif(HAS_TENSORRT, reason='TensorRT is installed: the real build runs instead')
def test_missing_tensorrt_is_a_clear_error(labels_model, tmp_path, capsys):
    """Without TensorRT: exit 1, one line naming the missing package, no engine file."""
    out = tmp_path / 'model.engine'
    code, _, err = build_engine([labels_model, '--out', out, '--fp16'], capsys)
    assert code == 1
    line = one_error_line(err)
    assert "TensorRT Python package 'tensorrt'" in line and 'not installed' in line
    assert os.listdir(tmp_path) == []


def test_missing_model(tmp_path, capsys):
    """A missing ONNX file is named."""
    code, _, err = build_engine([tmp_path / 'none.onnx'], capsys)
    assert code == 1
    assert 'none.onnx: ONNX model file not found' in one_error_line(err)


def test_int8_needs_a_qdq_model(labels_model, tmp_path, capsys):
    """--int8 on an fp32 model is refused before any build."""
    code, _, err = build_engine([labels_model, '--int8', '--out', tmp_path / 'm.engine'],
                                capsys)
    assert code == 1
    assert 'needs an INT8 QDQ model' in one_error_line(err)
    assert os.listdir(tmp_path) == []


def test_model_without_spec(tmp_path, capsys):
    """An ONNX without seg_perception metadata or sidecar says how to fix it."""
    import onnx
    from onnx import helper, TensorProto
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'bare',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 3, 4, 4])])
    bare = tmp_path / 'foreign.onnx'
    onnx.save(helper.make_model(graph), str(bare))
    code, _, err = build_engine([bare, '--out', tmp_path / 'm.engine'], capsys)
    assert code == 1
    assert 'no model spec' in one_error_line(err)


def test_precision_flags_follow_the_tensorrt_major_version():
    from seg_perception.core.errors import BackendError
    from seg_perception.core.backends.tensorrt_build import builder_flags
    assert builder_flags('10.13.3', fp16=True, int8=True) == ['FP16', 'INT8']
    assert builder_flags('10.0.1', fp16=False, int8=False) == []
    assert builder_flags('11.4.0.106', fp16=False, int8=True) == []
    with pytest.raises(BackendError, match=r'TensorRT 11\.4\.0\.106 has no FP16.*modelopt'):
        builder_flags('11.4.0.106', fp16=True, int8=False)


def test_usage_error_without_model(capsys):
    """No model argument is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as raised:
        cli.main(['build-engine', '--fp16'])
    assert raised.value.code == 2


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TENSORRT, reason='needs TensorRT (10 or 11) and an NVIDIA GPU')
def test_real_engine_build(labels_model, tmp_path, capsys):
    """A real TensorRT build writes the engine, its spec sidecar and the timing cache."""
    out = tmp_path / 'model.engine'
    cache = tmp_path / 'timing.cache'
    import tensorrt
    fp16 = ['--fp16'] if int(tensorrt.__version__.split('.')[0]) < 11 else []
    code, stdout, _ = build_engine([labels_model, '--out', out, '--timing-cache', cache] + fp16,
                                   capsys)
    assert code == 0
    assert out.stat().st_size > 0 and cache.stat().st_size > 0
    spec = ModelSpec.from_yaml(str(tmp_path / 'model.engine.yaml'))
    assert spec.output_kind == 'labels' and 'TensorRT' in stdout
