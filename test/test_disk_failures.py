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
Outputs on a real full disk (a 1 MiB tmpfs) and after kill -9: nothing under the final name.

Every command that writes (make-bag, infer, evaluate, replay --record) must end a failed write
with exit 1 and one line naming the file, and must never leave a truncated or empty output
under the name a re-run, a script or a person would take for the result.
"""

import os
import signal
import subprocess
import sys

from bag_helpers import load_metrics, make_bag, replay_cli, run_cli, sample_folders
import cv2
import pytest

from seg_perception.core.errors import DataError
from seg_perception.io import bags as bagio

DISK_SIZE = '1m'


@pytest.fixture
def disk(tmp_path):
    """Mount a real 1 MiB tmpfs (root only); skip with the reason when mount is refused."""
    mount_point = tmp_path / 'disk'
    mount_point.mkdir()
    try:
        result = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={DISK_SIZE}', 'tmpfs',
                                 str(mount_point)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f'cannot mount a tmpfs for the full-disk tests ({error})')
    if result.returncode != 0:
        pytest.skip('cannot mount a tmpfs for the full-disk tests (needs root): '
                    + (result.stderr.strip() or f'mount exited {result.returncode}'))
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], capture_output=True, timeout=30)


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    """Four CamVid frames (2 MB of bgr8 pixels in a bag: twice the disk) with labels."""
    return sample_folders(str(tmp_path_factory.mktemp('samples')), 4)


def fill(disk, leave: int) -> None:
    """Fill the disk with a filler file until only ``leave`` bytes are free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / 'filler', 'wb') as stream:
        stream.write(b'\0' * max(0, free - leave))


def assert_one_line_failure(code: int, err: str, *named: str) -> None:
    """Exit 1, a single error line, no traceback, naming each of ``named``."""
    assert code == 1, err
    assert 'Traceback' not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for name in named:
        assert name in err, err


def leftovers(disk, *expected: str):
    """Return what is on the disk besides the expected names (partials would show here)."""
    return sorted(set(os.listdir(disk)) - set(expected))


@pytest.mark.parametrize('out,options', [
    ('bag.db3', []), ('bag.mcap', []), ('bag.bag', []),
    ('bag_dir', ['--storage', 'sqlite3']), ('bag_dir_mcap', ['--storage', 'mcap'])])
def test_make_bag_on_a_full_disk_fails_cleanly(capsys, disk, folders, out, options):
    images, labels = folders
    final = disk / out
    code, _, err = run_cli(capsys, 'make-bag', '--images', images, '--labels', labels,
                           '--out', final, *options)
    assert_one_line_failure(code, err, str(final))
    assert not final.exists()
    assert leftovers(disk) == []  # no partial, no journal: the disk is empty again


def test_bag_writer_failure_is_sticky_and_named(disk, folders):
    """After a failed write every later write and the close raise; nothing is published."""
    final = disk / 'bag.db3'
    image = cv2.imread(os.path.join(folders[0], sorted(os.listdir(folders[0]))[0]))
    writer = bagio.BagWriter(str(final))
    header = bagio.make_header(writer.store, 1, 'cam')
    message = bagio.make_image(writer.store, image, 'bgr8', header)
    with pytest.raises(DataError) as first:
        for index in range(20):  # 20 x 518 KB on a 1 MiB disk
            writer.write('/cam', index, message)
    assert str(final) in str(first.value) and 'full' in str(first.value)
    with pytest.raises(DataError, match='an earlier write failed'):
        writer.write('/cam', 99, message)
    with pytest.raises(DataError, match=str(final)):
        writer.close()
    assert not final.exists() and leftovers(disk) == []


def test_infer_out_bag_on_a_full_disk_fails_cleanly(capsys, disk, labels_model, folders):
    final = disk / 'segmented.db3'
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--images', folders[0],
                           '--out-bag', final)
    assert_one_line_failure(code, err, str(final))
    assert not final.exists() and leftovers(disk) == []


def test_infer_out_on_a_full_disk_leaves_only_whole_files(capsys, disk, labels_model, folders):
    out = disk / 'out'
    fill(disk, 40_000)
    code, _, err = run_cli(capsys, 'infer', '--model', labels_model, '--images', folders[0],
                           '--out', out, '--save', 'labels', 'overlay')
    assert_one_line_failure(code, err, str(out))
    assert 'No space left on device' in err
    for kind in ('labels', 'overlay'):
        for name in os.listdir(out / kind):
            assert not name.startswith('.'), f'a partial file is left: {kind}/{name}'
            assert cv2.imread(str(out / kind / name)) is not None, f'{kind}/{name} is cut'
    assert not (out / 'frames.csv').exists()  # the index only comes with a finished run


def test_evaluate_report_on_a_full_disk_never_looks_current(capsys, disk, labels_model,
                                                            folders):
    images, labels = folders
    report = disk / 'report'
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--images', images,
                           '--labels', labels, '--strip', '0', '--report', report)
    assert code == 0, err
    old_html = (report / 'report.html').read_text()
    # even with the old report's space freed, the new one with its strip of frames cannot fit
    fill(disk, 30_000)
    code, _, err = run_cli(capsys, 'evaluate', '--model', labels_model, '--images', images,
                           '--labels', labels, '--max', '3', '--report', report)
    assert_one_line_failure(code, err, str(report / 'report.html'))
    assert 'No space left on device' in err
    if (report / 'metrics.json').exists():
        metrics = load_metrics(report)
        assert metrics['complete'] is False and 'report.html' in metrics['error']
    if (report / 'report.html').exists():
        html = (report / 'report.html').read_text()
        assert html != old_html and html.endswith('</html>\n')
    assert [n for n in os.listdir(report) if n.startswith('.')] == []


def test_a_killed_writer_leaves_no_bag_under_the_final_name(capsys, tmp_path, folders):
    """A writer killed with -9 mid ROS 1 .bag: the re-run is not refused, its bag is whole."""
    final = tmp_path / 'drive.bag'
    script = (
        'import sys, time\n'
        'import numpy as np\n'
        'from seg_perception.io import bags\n'
        'writer = bags.BagWriter(sys.argv[1])\n'
        'header = bags.make_header(writer.store, 1, "cam")\n'
        'image = np.zeros((360, 480, 3), np.uint8)\n'
        'for index in range(6):\n'
        '    writer.write("/cam", index, bags.make_image(writer.store, image, "rgb8", header))\n'
        'print("written", flush=True)\n'
        'time.sleep(60)\n')
    process = subprocess.Popen([sys.executable, '-c', script, str(final)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == 'written'
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    assert not final.exists(), 'a killed writer left a bag under the final name'
    make_bag(capsys, str(final), folders[0])  # the re-run is not refused as existing
    with bagio.BagReader(str(final)) as reader:
        assert not reader.truncated and reader.topics()[bagio.DEFAULT_IMAGE_TOPIC].count == 4


@pytest.mark.ros
@pytest.mark.parametrize('suffix', ['.db3', '.mcap'])
def test_replay_record_on_a_full_disk_exits_1(capsys, tmp_path, disk, folders, suffix):
    bag = make_bag(capsys, str(tmp_path / 'camera.mcap'), folders[0])
    final = disk / f'recorded{suffix}'
    result = replay_cli(bag, '--reliable', '--rate', '4', '--record', final, '--record-topics',
                        bagio.DEFAULT_IMAGE_TOPIC)
    assert_one_line_failure(result.returncode, result.stderr, str(final))
    assert 'recording failed' in result.stdout, result.stdout
    assert not final.exists() and leftovers(disk) == []
