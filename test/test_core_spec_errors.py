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

"""Wrongly typed model specs, class tables and core API arguments raise typed, named errors."""

import json
import re

import numpy as np
import onnx
import pytest
import yaml

from seg_perception.core import (BackendError, InputError, ModelLoadError, SegPerceptionError,
                                 Segmenter, SpecError)
from seg_perception.core.drivable import DrivableConfig
from seg_perception.core.spec import (load_class_table, METADATA_KEY, ModelSpec,
                                      resolve_class_table_path)

BASE = {'classes': 'camvid', 'input_height': 96, 'input_width': 128}
ONE_CLASS = {'id': 3, 'name': 'Road', 'color': [128, 64, 128]}
# (case, spec fields replaced, field the message must name)
SPEC_CASES = [
    ('drivable ids', {'drivable_classes': [1, 2]}, 'drivable_classes'),
    ('drivable null', {'drivable_classes': [None]}, 'drivable_classes'),
    ('drivable int', {'drivable_classes': 5}, 'drivable_classes'),
    ('classes_file int', {'classes_file': 123}, 'classes_file'),
    ('ignore_index str', {'ignore_index': 'x'}, 'ignore_index'),
    ('ignore_index float', {'ignore_index': 254.5}, 'ignore_index'),
    ('std nan', {'std': [0.2, 0.2, float('nan')]}, 'std'),
    ('std inf', {'std': [0.2, float('inf'), 0.2]}, 'std'),
    ('mean nan', {'mean': [float('nan'), 0.4, 0.4]}, 'mean'),
    ('mean -inf', {'mean': [0.4, 0.4, float('-inf')]}, 'mean'),
    ('mean str', {'mean': '123'}, 'mean'),
    ('architecture int', {'architecture': 5}, 'architecture'),
    ('dataset list', {'dataset': ['camvid']}, 'dataset'),
    ('input_width bool', {'input_width': True}, 'input_width'),
    ('input_height float', {'input_height': 96.0}, 'input_height'),
    ('class table missing', {'classes': 'nonexistent_table'}, 'classes'),
    ('class id float', {'classes': [dict(ONE_CLASS, id=10.7)]}, r'classes\[0\]'),
    ('class id bool', {'classes': [dict(ONE_CLASS, id=True)]}, r'classes\[0\]'),
    ('class color float', {'classes': [dict(ONE_CLASS, color=[1.7, 2, 3])]}, r'classes\[0\]'),
    ('class color str', {'classes': [dict(ONE_CLASS, color='123')]}, r'classes\[0\]'),
    ('class name null', {'classes': [dict(ONE_CLASS, name=None)]}, r'classes\[0\]'),
    ('class name int', {'classes': [dict(ONE_CLASS, name=7)]}, r'classes\[0\]'),
]


def expect_spec_error(source, field):
    """Return pytest.raises for a one-line SpecError that names ``source`` and ``field``."""
    return pytest.raises(SpecError, match=f'^{re.escape(str(source))}: .*{field}[^\n]*$')


@pytest.mark.parametrize('fields,field', [c[1:] for c in SPEC_CASES],
                         ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_fields_in_a_sidecar_and_in_metadata(tmp_path, fields, field):
    data = dict(BASE, **fields)
    sidecar = tmp_path / 'model.yaml'
    sidecar.write_text(yaml.safe_dump(data))
    with expect_spec_error(sidecar, field):
        ModelSpec.from_yaml(str(sidecar))
    with expect_spec_error('model.onnx', field):
        ModelSpec.from_json(json.dumps(data), 'model.onnx')


def test_spec_objects_built_in_code_are_checked_too():
    table = load_class_table('camvid')
    for fields, field in (({'std': (0.2, 0.2, float('nan'))}, 'std'),
                          ({'drivable_classes': 'Road'}, 'drivable_classes'),
                          ({'architecture': None}, 'architecture'),
                          ({'input_width': np.float32(8)}, 'input_width')):
        with expect_spec_error('<memory>', field):
            ModelSpec(classes=table.classes, input_height=8, **dict({'input_width': 8}, **fields))


def test_bad_spec_in_onnx_metadata_names_the_model(labels_model, tmp_path):
    model = onnx.load(labels_model)
    spec = json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))
    for fields, field in (({'drivable_classes': [1]}, 'drivable_classes'),
                          ({'std': [0.2, 0.2, float('nan')]}, 'std'),
                          ({'classes': 'nonexistent_table'}, 'classes')):
        target = tmp_path / 'bad.onnx'
        onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(dict(spec, **fields))})
        onnx.save(model, str(target))
        with expect_spec_error(target, field):
            Segmenter(str(target))


# (case, YAML line replacing the camvid table's line of that key, field the message must name)
TABLE_CASES = [
    ('ignore_index str', 'ignore_index: abc', 'ignore_index'),
    ('source_ignore_ids int', 'source_ignore_ids: 11', 'source_ignore_ids'),
    ('source_ignore_ids str', 'source_ignore_ids: [x]', 'source_ignore_ids'),
    ('drivable id', 'drivable: [3]', 'drivable'),
    ('drivable str', 'drivable: Road', 'drivable'),
    ('drivable unknown', 'drivable: [Lava]', 'drivable'),
    ('name list', 'name: [camvid]', 'name'),
]


def bad_table(folder, line):
    """Write the camvid class table with ``line`` replacing the line of its key; return it."""
    key = line.split(':')[0] + ':'
    with open(resolve_class_table_path('camvid'), encoding='utf-8') as stream:
        kept = [k for k in stream.read().splitlines() if not k.startswith(key)]
    path = folder / 'table.yaml'
    path.write_text('\n'.join(kept + [line]) + '\n')
    return path


@pytest.mark.parametrize('line,field', [c[1:] for c in TABLE_CASES],
                         ids=[c[0] for c in TABLE_CASES])
def test_bad_class_table_fields(tmp_path, line, field):
    table = bad_table(tmp_path, line)
    with expect_spec_error(table, f"field '{field}'"):
        load_class_table(str(table))
    sidecar = tmp_path / 'model.yaml'
    sidecar.write_text(yaml.safe_dump(dict(BASE, classes=None, classes_file='table.yaml')))
    with expect_spec_error(sidecar, f"classes_file.*{re.escape(str(table))}.*'{field}'"):
        ModelSpec.from_yaml(str(sidecar))


def test_the_camvid_table_still_loads():
    table = load_class_table('camvid')
    assert table.drivable == ['Road'] and table.source_ignore_ids == [11]


def test_bad_process_arguments(labels_model):
    image = np.zeros((8, 8, 3), np.uint8)
    with Segmenter(labels_model, num_threads=1) as segmenter:
        for kwargs, argument in (({'overlay_alpha': 'abc'}, 'overlay_alpha'),
                                 ({'overlay_alpha': float('nan'), 'overlay': True},
                                  'overlay_alpha'),
                                 ({'drivable_classes': [1]}, 'drivable_classes'),
                                 ({'drivable_classes': [None]}, 'drivable_classes'),
                                 ({'drivable_classes': [['Road']]}, 'drivable_classes'),
                                 ({'drivable_classes': 5}, 'drivable_classes'),
                                 ({'on_labels': 'print'}, 'on_labels')):
            with pytest.raises(InputError, match=argument) as caught:
                segmenter.process(image, **kwargs)
            assert caught.value.reason == 'bad_parameter'
        for attribute, value in (('drivable_classes', None), ('drivable_classes', [3]),
                                 ('overlay_alpha', '0.5'), ('drivable_config', 'junk')):
            with pytest.raises(InputError, match=attribute):
                setattr(segmenter, attribute, value)
        assert segmenter.drivable_classes == ['Road'] and segmenter.overlay_alpha == 0.5
        # the right types still work, numpy scalars included
        result = segmenter.process(image, overlay=True, overlay_alpha=np.float32(0.3),
                                   drivable_classes=('Road', 'Pavement'))
        assert result.overlay.shape == image.shape


def test_bad_segmenter_arguments(labels_model, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    cases = [({'model_path': 5}, ModelLoadError, 'model_path'),
             ({'num_threads': '2'}, BackendError, 'num_threads'),
             ({'num_threads': -1}, BackendError, 'num_threads'),
             ({'num_threads': 1.5}, BackendError, 'num_threads'),
             ({'engine_cache_dir': str(blocker / 'cache')},
              BackendError, f'engine_cache_dir {re.escape(str(blocker))}/cache'),
             ({'engine_cache_dir': 5}, BackendError, 'engine_cache_dir'),
             ({'device': 5}, BackendError, 'device'),
             ({'drivable_config': 'junk'}, InputError, 'drivable_config'),
             ({'drivable_classes': [3]}, InputError, 'drivable_classes'),
             ({'drivable_classes': 5}, InputError, 'drivable_classes')]
    for kwargs, error, match in cases:
        kwargs = dict({'model_path': labels_model}, **kwargs)
        with pytest.raises(error, match=match) as caught:
            Segmenter(**kwargs)
        assert isinstance(caught.value, SegPerceptionError)
        assert '\n' not in str(caught.value)
    with Segmenter(labels_model, num_threads=np.int64(1), engine_cache_dir=str(tmp_path / 'c'),
                   drivable_config=DrivableConfig(min_area=0.0)) as segmenter:
        assert segmenter.process(np.zeros((4, 4, 3), np.uint8)).labels.shape == (4, 4)
    assert (tmp_path / 'c').is_dir()


def test_class_tables_named_by_a_sidecar(tmp_path, monkeypatch):
    """A bare name is a bundled table; a relative path is relative to the sidecar's folder."""
    folder = tmp_path / 'models'
    folder.mkdir()
    bundled = folder / 'bundled.yaml'
    bundled.write_text(yaml.safe_dump(dict(BASE, classes_file='camvid')))
    assert len(ModelSpec.from_yaml(str(bundled)).classes) == 11
    (folder / 'mine.yaml').write_text(yaml.safe_dump({
        'name': 'mine', 'classes': [ONE_CLASS, {'id': 0, 'name': 'Sky',
                                                'color': [128, 128, 128]}],
        'drivable': ['Road']}))
    own = folder / 'own.yaml'
    own.write_text(yaml.safe_dump(dict(BASE, classes='mine.yaml')))
    monkeypatch.chdir(tmp_path)  # not the sidecar's folder
    spec = ModelSpec.from_yaml(str(own))
    assert spec.class_names == ['Sky', 'Road'] and spec.drivable_classes == ['Road']


def test_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path):
    """A few hundred bytes of nested aliases (billion laughs) fail fast, with a short message."""
    import time

    from seg_perception.core.spec import ModelSpec
    lines = ['a0: &a0 [Road, Road, Road, Road, Road, Road, Road, Road, Road]']
    for level in range(1, 9):
        previous = f'*a{level - 1}'
        lines.append(f'a{level}: &a{level} [{", ".join([previous] * 9)}]')
    lines += ['classes: camvid', 'input_height: 96', 'input_width: 128', 'drivable_classes: *a8']
    sidecar = tmp_path / 'bomb.yaml'
    sidecar.write_text('\n'.join(lines) + '\n')
    assert sidecar.stat().st_size < 600
    started = time.monotonic()
    with pytest.raises(SpecError) as raised:
        ModelSpec.from_yaml(str(sidecar))
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert 'bomb.yaml' in message and 'aliases' in message and len(message) < 300


@pytest.mark.parametrize('kind', ['yaml', 'json'])
def test_deep_nesting_is_one_line_naming_the_file(tmp_path, kind):
    from seg_perception.core.spec import ModelSpec
    if kind == 'yaml':
        path = tmp_path / 'deep.yaml'
        path.write_text('classes: ' + '[' * 5000 + ']' * 5000 + '\n')
        with pytest.raises(SpecError, match='deep.yaml: invalid YAML .*nested') as raised:
            ModelSpec.from_yaml(str(path))
    else:
        with pytest.raises(SpecError, match='model.onnx: metadata .* nested too deeply') as raised:
            ModelSpec.from_json('[' * 100000 + ']' * 100000, 'model.onnx')
    assert len(str(raised.value)) < 300


def test_values_quoted_in_errors_are_capped():
    from seg_perception.core.spec import ModelSpec
    table = load_class_table('camvid')
    with pytest.raises(SpecError) as raised:
        ModelSpec(classes=table.classes, input_height=96, input_width=128,
                  channel_order='x' * 100000)
    assert len(str(raised.value)) < 400 and '100002 characters' in str(raised.value)


@pytest.mark.parametrize('named', ['/etc/passwd', '../outside.yaml', 'sub/../../outside.yaml'])
def test_a_spec_cannot_name_a_class_table_outside_its_folder(tmp_path, named):
    """A model's spec may name a bundled table or a file beside it, nothing else on the disk."""
    from seg_perception.core.spec import ModelSpec
    folder = tmp_path / 'models'
    folder.mkdir()
    (tmp_path / 'outside.yaml').write_text(
        yaml.safe_dump({'name': 'x', 'classes': [ONE_CLASS], 'drivable': ['Road']}))
    sidecar = folder / 'model.yaml'
    sidecar.write_text(yaml.safe_dump(dict(BASE, classes=None, classes_file=named)))
    with pytest.raises(SpecError, match='a bundled table .* or a file next to it'):
        ModelSpec.from_yaml(str(sidecar))
    metadata = json.dumps(dict(BASE, classes=named))
    with pytest.raises(SpecError, match='a bundled table .* or a file next to it'):
        ModelSpec.from_json(metadata, str(sidecar))
