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

"""The core's tools through the real CLI: ``bench core`` and ``demo``."""

import json
import os
import shutil

from core_models import export_nearest_color_model
import cv2
import numpy as np
import pytest

from seg_perception.tools.cli import main

SAMPLE_NAMES = ('0016E5_07959.png', '0016E5_08139.png')


def test_bench_core_writes_every_stage(tmp_path, capsys):
    report = tmp_path / 'bench.json'
    code = main(['bench', 'core', '--camera', '640x400', '--output', '320x160',
                 '--repeats', '3', '--warmup', '1', '--json', str(report)])
    assert code == 0
    printed, warned = capsys.readouterr()
    assert '320x160 labels -> 640x400 camera' in printed and 'total median' in printed
    assert 'deprecated' not in warned
    results = json.loads(report.read_text())
    assert results['camera'] == [400, 640] and results['output'] == [160, 320]
    assert set(results['stages']) == {'postprocess', 'drivable', 'colorize', 'total'}
    assert all(stage['median'] > 0 for stage in results['stages'].values())


def test_bench_old_flat_spelling_still_runs_after_one_deprecation_line(tmp_path, capsys):
    """``bench --core --core-camera ...`` (the last release's spelling) runs as ``bench core``."""
    report = tmp_path / 'bench.json'
    code = main(['bench', '--repeats', '2', '--core', '--core-camera', '640x400',
                 '--core-output', '320x160', '--core-overlay', '--warmup', '0', '--json',
                 str(report)])
    assert code == 0
    printed, warned = capsys.readouterr()
    assert '320x160 labels -> 640x400 camera, 2 runs' in printed
    lines = warned.strip().splitlines()
    assert len(lines) == 1 and 'deprecated' in lines[0], warned
    assert 'bench --core' in lines[0] and '"seg-perception bench core"' in lines[0]
    results = json.loads(report.read_text())
    assert results['camera'] == [400, 640] and results['repeats'] == 2
    # the old flags are checked as before, and mixing them up is bad usage
    with pytest.raises(SystemExit) as stopped:
        main(['bench', '--core', '--core-camera', 'big'])
    assert stopped.value.code == 2 and '--core-camera' in capsys.readouterr().err
    assert main(['bench', '--core', '--node-size', '64x64']) == 2
    assert '--node-size: not an option of bench core' in capsys.readouterr().err
    assert main(['bench', '--repeats', '2', 'core']) == 2
    assert 'after the benchmark name' in capsys.readouterr().err
    assert main(['bench']) == 2
    assert 'choose a benchmark: core | models | node' in capsys.readouterr().err


def test_bench_core_rejects_zero_repeats(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(['bench', 'core', '--repeats', '0'])
    assert stopped.value.code == 2
    assert "--repeats: '0' must be >= 1" in capsys.readouterr().err


def test_demo_writes_overlays_and_scores_against_labels(tmp_path, capsys):
    from conftest import SAMPLES
    images, labels = tmp_path / 'data' / 'images', tmp_path / 'data' / 'labels'
    images.mkdir(parents=True)
    labels.mkdir()
    for name in SAMPLE_NAMES:
        shutil.copy(f'{SAMPLES}/images/{name}', images / name)
        shutil.copy(f'{SAMPLES}/labels/{name}', labels / name)
    model = export_nearest_color_model(tmp_path / 'color.onnx', height=180, width=240,
                                       input_dtype='uint8', output_kind='labels')
    out = tmp_path / 'out'
    assert main(['demo', '--out', str(out), '--model', model, '--images', str(images)]) == 0
    printed = capsys.readouterr().out
    assert '2 frames with labels: mIoU' in printed and 'drivable IoU' in printed
    for name in SAMPLE_NAMES:
        stem = name[:-4]
        overlay = cv2.imread(str(out / f'{stem}_overlay.png'))
        drivable = cv2.imread(str(out / f'{stem}_drivable.png'), cv2.IMREAD_UNCHANGED)
        predicted = cv2.imread(str(out / f'{stem}_labels.png'), cv2.IMREAD_UNCHANGED)
        assert overlay.shape == (360, 480, 3)
        assert set(np.unique(drivable)) <= {0, 255} and predicted.max() < 11


def test_demo_errors_name_the_folder(tmp_path, capsys):
    assert main(['demo', '--out', str(tmp_path / 'out'), '--images', str(tmp_path)]) == 1
    assert str(tmp_path) in capsys.readouterr().err
    missing = tmp_path / 'missing.onnx'
    assert main(['demo', '--out', str(tmp_path / 'out'), '--model', str(missing)]) == 1
    assert f'{missing}: ONNX model file not found' in capsys.readouterr().err


def test_demo_without_a_bundled_model_exports_an_untrained_one(tmp_path, monkeypatch, capsys):
    import sys

    from seg_perception.core import resources, Segmenter
    from seg_perception.tools.demo import resolve_model
    # a source tree without models/ (its config/ stays: the class tables are needed)
    os.symlink(os.path.join(resources.SOURCE_ROOT, 'config'), tmp_path / 'config')
    monkeypatch.setattr(resources, 'SOURCE_ROOT', str(tmp_path))
    monkeypatch.setattr(sys, 'prefix', str(tmp_path / 'prefix'))
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path / 'ament'))
    path, untrained = resolve_model('', str(tmp_path))
    assert untrained and path.startswith(str(tmp_path))
    warning = capsys.readouterr().err
    assert 'no bundled model' in warning and 'UNTRAINED' in warning
    with Segmenter(path) as segmenter:
        assert (segmenter.spec.input_height, segmenter.spec.input_width) == (360, 480)
