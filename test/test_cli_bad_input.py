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

"""The command line on bad values: exit 2 for bad usage, 1 with one line naming the fault."""

import os

from bag_helpers import run_cli, sample_folders
import pytest

from seg_perception.io import bags as bagio


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    return sample_folders(str(tmp_path_factory.mktemp('samples')), count=2)


def run_usage(capsys, *argv):
    """Run the CLI expecting argparse to refuse; return (exit code, stderr)."""
    with pytest.raises(SystemExit) as stopped:
        run_cli(capsys, *argv)
    return stopped.value.code, capsys.readouterr().err


@pytest.mark.parametrize('argv, fragment', [
    (['replay', 'x.mcap', '--rate', 'nan'], "--rate: 'nan' is not a finite number"),
    (['replay', 'x.mcap', '--start', '-1'], "--start: '-1' must be >= 0"),
    (['make-bag', '--images', 'i', '--out', 'o.mcap', '--rate', '0'], "--rate: '0' must be > 0"),
    (['make-bag', '--images', 'i', '--out', 'o.mcap', '--max', '0'], "--max: '0' must be >= 1"),
    (['make-bag', '--images', 'i', '--out', 'o.mcap', '--start-stamp', '1e20'],
     '--start-stamp'),
    (['make-bag', '--images', 'i', '--out', 'o.mcap', '--topic', 'bad topic!'],
     'not a valid ROS topic name'),
    (['infer', '--images', 'i', '--out', 'o', '--workers', '-1'], "--workers: '-1' must be >= 0"),
    (['infer', '--images', 'i', '--out', 'o', '--backend', 'nope'], "invalid choice: 'nope'"),
    (['infer', '--images', 'i', '--out', 'o', '--precision', 'fp64'], "invalid choice: 'fp64'"),
    (['evaluate', '--images', 'i', '--labels', 'l', '--report', 'r', '--match-window', 'nan'],
     '--match-window'),
    (['evaluate', '--images', 'i', '--labels', 'l', '--report', 'r', '--strip', '-3'],
     '--strip'),
    (['train', '--data', 'd', '--out', 'o', '--batch-size', '0'], '--batch-size'),
    (['train', '--data', 'd', '--out', 'o', '--val-every', '0'], '--val-every'),
    (['train', '--data', 'd', '--out', 'o', '--lr', '-1'], '--lr'),
    (['train', '--data', 'd', '--out', 'o', '--ohem', '5'], '--ohem'),
    (['demo', '--alpha', '5'], "--alpha: '5' must be a number in [0, 1]"),
    (['bench', 'core', '--repeats', '0'], '--repeats'),
    (['bench', 'models', 'lraspp', '--threads', '0'], '--threads'),
    (['bench', 'node', '--size', '0x720'], "--size: '0x720' must be positive"),
    (['bench', 'models'], 'the following arguments are required: MODEL'),
    (['export', '--arch', 'lraspp', '--out', 'x.onnx', '--opset', '7'],
     "--opset: '7' must be an integer in [12, 23]"),
])
def test_bad_values_are_bad_usage(capsys, argv, fragment):
    code, err = run_usage(capsys, *argv)
    assert code == 2 and fragment in err, err
    assert 'Traceback' not in err


def test_option_combinations_that_cannot_work(capsys, tmp_path, folders):
    images, labels = folders
    code, _, err = run_cli(capsys, 'infer', '--images', images, '--topic', '/camera/image_raw',
                           '--out', tmp_path / 'o')
    assert code == 2 and '--images has no topics' in err, err
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--labels', labels, '--out',
                           tmp_path / 'same.mcap', '--labels-topic', bagio.DEFAULT_IMAGE_TOPIC)
    assert code == 2 and 'topics must differ' in err, err
    assert not (tmp_path / 'same.mcap').exists()
    code, _, err = run_cli(capsys, 'evaluate', '--predictions', tmp_path / 'p.mcap', '--report',
                           tmp_path / 'r')
    assert code == 2 and 'needs --gt-classes' in err, err


def test_outputs_that_cannot_be_written_name_the_path(capsys, tmp_path, folders):
    images, labels = folders
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    for argv in (['infer', '--images', images, '--out', blocker / 'out'],
                 ['evaluate', '--images', images, '--labels', labels, '--report',
                  blocker / 'report'],
                 ['demo', '--core', '--images', images, '--out', blocker / 'demo']):
        code, _, err = run_cli(capsys, *argv)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1, err
        assert str(blocker) in lines[0] and 'Not a directory' in lines[0], err
    code, _, err = run_cli(capsys, 'bench', 'core', '--json', tmp_path / 'no' / 'b.json')
    assert code == 1 and 'does not exist' in err and 'Traceback' not in err, err


def test_runs_that_produce_nothing_fail(capsys, tmp_path, folders):
    images, labels = folders
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'frame.png').write_bytes(b'not a png')
    code, out, err = run_cli(capsys, 'infer', '--images', broken, '--out', tmp_path / 'o')
    assert code == 1 and 'no frame was segmented' in err, (out, err)
    others = tmp_path / 'other_names'
    others.mkdir()
    first = sorted(os.listdir(labels))[0]
    os.link(os.path.join(labels, first), others / f'renamed_{first}')
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--labels', others, '--out',
                           tmp_path / 'x.mcap')
    assert code == 1 and 'no label file has the name of an image' in err, err
    code, _, err = run_cli(capsys, 'demo', '--core', '--images', images, '--labels', others,
                           '--out', tmp_path / 'd')
    assert code == 1 and 'no label file has the name of an image' in err, err


def test_make_bag_writes_unlabelled_frames_too(capsys, tmp_path, folders):
    images, labels = folders
    partial = tmp_path / 'partial'
    partial.mkdir()
    first = sorted(os.listdir(labels))[0]
    os.link(os.path.join(labels, first), partial / first)
    code, out, err = run_cli(capsys, 'make-bag', '--images', images, '--labels', partial,
                             '--out', tmp_path / 'p.mcap')
    assert code == 0, err
    assert '2 frames on' in out and '1 labels on' in out and '1 frames without a label' in out


def test_bench_model_names_a_broken_model(capsys, tmp_path):
    broken = tmp_path / 'random.onnx'
    broken.write_bytes(os.urandom(256))
    code, _, err = run_cli(capsys, 'bench', 'models', broken, '--repeats', '1', '--warmup', '0')
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and str(broken) in lines[0], err


def test_replay_refuses_what_it_cannot_publish(capsys, tmp_path, folders):
    images, _ = folders
    bag = tmp_path / 'two.mcap'
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--out', bag)
    assert code == 0, err
    code, _, err = run_cli(capsys, 'replay', bag, '--start', '1000')
    assert code == 1 and 'past the end of the bag' in err, err
    code, _, err = run_cli(capsys, 'replay', bag, '--remap',
                           f'{bagio.DEFAULT_IMAGE_TOPIC}:=bad topic!')
    assert code == 2 and 'not a valid ROS topic name' in err, err


@pytest.mark.parametrize('text, fragment', [
    ('target: nowhere\nmap: {Road: Road}\n', 'field target: nowhere: class table not found'),
    ('target: camvid\nmap: [1, 2]\n', 'field map must be a mapping'),
    ('target: camvid\n', 'field map must be a mapping'),
])
def test_class_map_errors_name_the_file_and_field(tmp_path, text, fragment):
    from seg_perception.core.errors import SpecError
    from seg_perception.tools.evaluate import read_class_map

    path = tmp_path / 'map.yaml'
    path.write_text(text)
    with pytest.raises(SpecError) as raised:
        read_class_map(str(path))
    assert str(path) in str(raised.value) and fragment in str(raised.value)


def test_model_files_that_are_no_models_are_named(capsys, tmp_path):
    empty = tmp_path / 'empty.onnx'
    empty.write_bytes(b'')
    folder = tmp_path / 'folder.onnx'
    folder.mkdir()
    for argv, fragment in ((['build-engine', empty], 'file is empty'),
                           (['bench', 'models', folder, '--repeats', '1'], 'is not a file')):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1 and fragment in err and 'Traceback' not in err, err


def test_make_bag_start_stamp_is_exact_to_the_nanosecond(capsys, tmp_path, folders):
    images, _ = folders
    bag = tmp_path / 'stamped.mcap'
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--out', bag,
                           '--start-stamp', '1700000000.123456789', '--rate', '4')
    assert code == 0, err
    with bagio.BagReader(str(bag)) as reader:
        stamps = [bagio.stamp_ns(reader.deserialize(m))
                  for m in reader.messages([bagio.DEFAULT_IMAGE_TOPIC])]
    assert stamps == [1_700_000_000_123_456_789, 1_700_000_000_373_456_789]


def test_build_engine_checks_its_outputs_before_tensorrt(capsys, tmp_path, labels_model):
    code, _, err = run_cli(capsys, 'build-engine', labels_model, '--out', labels_model)
    assert code == 1 and 'is the input model' in err, err
    code, _, err = run_cli(capsys, 'build-engine', labels_model, '--out', tmp_path / 'm.engine',
                           '--timing-cache', tmp_path / 'no' / 'cache')
    assert code == 1 and 'does not exist' in err, err


def test_an_engine_sidecar_names_the_whole_file(tmp_path, labels_model):
    """build-engine's model.engine.yaml wins; model.yaml (an ONNX's sidecar) is the fallback."""
    import dataclasses

    import onnxruntime

    from seg_perception.core.spec import load_spec, named_sidecar_path

    session = onnxruntime.InferenceSession(labels_model, providers=['CPUExecutionProvider'])
    spec = load_spec(labels_model, session.get_modelmeta().custom_metadata_map)
    engine = tmp_path / 'model.engine'
    engine.write_bytes(b'engine')
    dataclasses.replace(spec, channel_order='bgr').save_yaml(str(tmp_path / 'model.yaml'))
    assert load_spec(str(engine)).channel_order == 'bgr'
    spec.save_yaml(named_sidecar_path(str(engine)))
    assert load_spec(str(engine)).channel_order == spec.channel_order == 'rgb'


@pytest.mark.parametrize('argv,fragment', [
    (['evaluate', '--images', 'a', '--labels', 'b', '--report', 'r', '--report', 's'],
     '--report given twice'),
    (['infer', '--images', 'a', '--out', 'x', '--out', 'y'], '--out given twice'),
    (['export', '--arch', 'lraspp', '--arch', 'unet', '--out', 'm.onnx'], '--arch given twice'),
    (['bench', 'core', '--repeats', '2', '--repeats', '3'], '--repeats given twice'),
])
def test_an_option_given_twice_is_refused_not_overwritten(argv, fragment, capsys):
    """
    A single-value option refuses a second value (last-one-wins dropped data silently).

    evaluate --bag A --bag B scored only B; --bag now repeats on purpose.
    """
    code, err = run_usage(capsys, *argv)
    assert code == 2 and fragment in err, err
