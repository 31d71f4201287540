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

"""``seg-perception train``: up-front data validation, a real short run, logs and resume."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, SAMPLES

CLI = [sys.executable, '-m', 'seg_perception.tools.cli']


def make_dataset(root, count=4):
    """Lay out real CamVid sample pairs in the SegNet folder layout (train and val)."""
    names = sorted(os.listdir(os.path.join(SAMPLES, 'images')))[:count]
    for split in ('train', 'val'):
        os.makedirs(root / split)
        os.makedirs(root / f'{split}annot')
        for name in names:
            shutil.copy(os.path.join(SAMPLES, 'images', name), root / split / name)
            shutil.copy(os.path.join(SAMPLES, 'labels', name), root / f'{split}annot' / name)
    return names


def train(args, timeout=600):
    return subprocess.run(CLI + ['train'] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def test_missing_label_stops_before_training(tmp_path):
    names = make_dataset(tmp_path / 'data')
    os.remove(tmp_path / 'data' / 'trainannot' / names[1])
    result = train(['--data', tmp_path / 'data', '--out', tmp_path / 'run', '--epochs', 1])
    assert result.returncode == 1
    assert names[1] in result.stderr and 'missing' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'run' / 'resume.pt').exists()


def test_size_mismatch_names_the_file(tmp_path):
    names = make_dataset(tmp_path / 'data')
    path = tmp_path / 'data' / 'valannot' / names[2]
    cv2.imwrite(str(path), cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:200])
    result = train(['--data', tmp_path / 'data', '--out', tmp_path / 'run', '--epochs', 1])
    assert result.returncode == 1
    assert str(path) in result.stderr and 'differs from image size' in result.stderr


def test_label_value_outside_class_table(tmp_path):
    names = make_dataset(tmp_path / 'data')
    path = tmp_path / 'data' / 'trainannot' / names[0]
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    labels[0, 0] = 42
    cv2.imwrite(str(path), labels)
    result = train(['--data', tmp_path / 'data', '--out', tmp_path / 'run', '--epochs', 1])
    assert result.returncode == 1
    assert str(path) in result.stderr and '[42]' in result.stderr


def test_short_run_writes_checkpoints_logs_and_resumes(tmp_path):
    make_dataset(tmp_path / 'data', count=3)
    common = ['--data', tmp_path / 'data', '--out', tmp_path / 'run', '--height', 96,
              '--width', 128, '--crop', '96x128', '--batch-size', 2, '--no-progress',
              '--threads', 1]
    first = train(common + ['--epochs', 1])
    assert first.returncode == 0, first.stderr[-2000:]
    for name in ('resume.pt', 'best.pt', 'history.csv', 'history.json',
                 'curves.png'):
        assert (tmp_path / 'run' / name).is_file(), name
    second = train(common + ['--epochs', 2, '--resume', tmp_path / 'run' / 'resume.pt'])
    assert second.returncode == 0, second.stderr[-2000:]
    history = json.loads((tmp_path / 'run' / 'history.json').read_text())['history']
    assert [row['epoch'] for row in history] == [1, 2]
    assert all(np.isfinite(row['loss']) and 0 <= row['val_miou'] <= 100 for row in history)
    # a warm restart into a new run folder has best weights there too, whatever its score
    restart = [tmp_path / 'run2' if a == tmp_path / 'run' else a for a in common]
    third = train(restart + ['--epochs', 3, '--resume', tmp_path / 'run' / 'resume.pt'])
    assert third.returncode == 0, third.stderr[-2000:]
    assert (tmp_path / 'run2' / 'best.pt').is_file()

    import torch
    from seg_perception.models.zoo import create_model
    best = torch.load(tmp_path / 'run' / 'best.pt', weights_only=True)
    assert all(v.dtype in (torch.float16, torch.int64) for v in best['model'].values())
    create_model('lraspp', num_classes=11, weights=str(tmp_path / 'run' / 'best.pt'))


def test_worker_batches_do_not_depend_on_the_worker_count(tmp_path):
    make_dataset(tmp_path / 'data', count=4)
    losses = []
    for workers in (1, 2):
        out = tmp_path / f'run{workers}'
        result = train(['--data', tmp_path / 'data', '--out', out, '--height', 96, '--width',
                        128, '--crop', '96x128', '--batch-size', 2, '--no-progress', '--threads',
                        1, '--epochs', 1, '--workers', workers, '--amp'])
        assert result.returncode == 0, result.stderr[-2000:]
        history = json.loads((out / 'history.json').read_text())['history']
        losses.append(history[0]['loss'])
    assert np.isfinite(losses[0]) and losses[0] == losses[1]


@pytest.mark.parametrize('bad', [['--crop', 'big'], ['--arch', 'segformer'],
                                 ['--workers', '-1']])
def test_bad_usage(tmp_path, bad):
    make_dataset(tmp_path / 'data', count=1)
    result = train(['--data', tmp_path / 'data', '--out', tmp_path / 'run'] + bad)
    assert result.returncode in (1, 2)
    assert 'Traceback' not in result.stderr


def test_resume_from_a_file_that_is_no_checkpoint(tmp_path):
    make_dataset(tmp_path / 'data', count=1)
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'\x11' * 64)
    result = train(['--data', tmp_path / 'data', '--out', tmp_path / 'run', '--epochs', 1,
                    '--batch-size', 1, '--resume', garbage])
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert str(garbage) in result.stderr and 'not a checkpoint' in result.stderr


def test_fewer_images_than_the_batch_size_is_an_error(tmp_path):
    make_dataset(tmp_path / 'data', count=2)
    result = train(['--data', tmp_path / 'data', '--out', tmp_path / 'run', '--epochs', 1,
                    '--batch-size', 4])
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert '2 training images, fewer than the batch size 4' in result.stderr
    assert not (tmp_path / 'run' / 'best.pt').exists()


def tiny_run(data, epochs):
    """Return the options of a seconds-long training run on ``data``."""
    return ['--data', data, '--height', 96, '--width', 128, '--crop', '96x128', '--batch-size',
            2, '--no-progress', '--threads', 1, '--epochs', epochs]


def one_epoch_run(tmp_path, out, *extra):
    """Train one tiny epoch on 2 sample frames into tmp_path/out; return the common options."""
    make_dataset(tmp_path / 'data', count=2)
    common = tiny_run(tmp_path / 'data', 1)
    result = train(common + ['--out', tmp_path / out] + list(extra))
    assert result.returncode == 0, result.stderr[-2000:]
    return common


@pytest.mark.parametrize('options', [[], ['--ema', 0.9], ['--lovasz-weight', 0.5]],
                         ids=['plain', 'ema', 'lovasz'])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, options):
    """Stopping after epoch 1 and resuming from resume.pt gives the same run, bit for bit."""
    import torch

    make_dataset(tmp_path / 'data', count=3)
    common = options + tiny_run(tmp_path / 'data', 2)
    straight = train(common + ['--out', tmp_path / 'straight'])
    assert straight.returncode == 0, straight.stderr[-2000:]
    first = train(common[:-1] + [1, '--out', tmp_path / 'split'])
    assert first.returncode == 0, first.stderr[-2000:]
    second = train(common + ['--out', tmp_path / 'split', '--resume',
                             tmp_path / 'split' / 'resume.pt'])
    assert second.returncode == 0, second.stderr[-2000:]

    def history(run):
        rows = json.loads((tmp_path / run / 'history.json').read_text())['history']
        return [(r['epoch'], r['loss'], r['val_miou'], r.get('raw_val_miou'), r['lr'])
                for r in rows]

    assert history('straight') == history('split')
    a = torch.load(tmp_path / 'straight' / 'resume.pt', weights_only=True)
    b = torch.load(tmp_path / 'split' / 'resume.pt', weights_only=True)
    assert a['epoch'] == b['epoch'] == 2
    for key, value in a['model'].items():
        assert torch.equal(value, b['model'][key]), key
    assert a['rng'] == b['rng'] and torch.equal(a['torch_rng'], b['torch_rng'])
    assert ('ema' in a) == ('--ema' in options)
    for key, value in a.get('ema', {}).items():
        assert torch.equal(value, b['ema'][key]), key


def test_ema_decay_warms_up_then_holds():
    """The average moves by 1 - min(decay, (1 + n) / (10 + n)) towards the weights each step."""
    import torch

    from seg_perception.models.train import warmed_up_ema

    update = warmed_up_ema(0.9)
    for steps, decay in ((1, 2 / 11), (80, 0.9), (10 ** 6, 0.9)):
        averaged, current = [torch.zeros(3)], [torch.ones(3)]
        update(averaged, current, torch.tensor(steps))
        assert torch.allclose(averaged[0], torch.full((3,), 1 - decay)), (steps, averaged)


def test_ema_weights_are_the_ones_validated_and_written(tmp_path):
    """--ema deploys the moving average; the trained weights' score is logged beside it."""
    import torch

    make_dataset(tmp_path / 'data', count=3)
    run = tmp_path / 'run'
    # validated only at the end, so best.pt holds epoch 2
    result = train(tiny_run(tmp_path / 'data', 2) + ['--out', run, '--ema', 0.9,
                                                     '--val-every', 2])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((run / 'history.json').read_text())['history']
    assert [row['epoch'] for row in rows if 'val_miou' in row and 'raw_val_miou' in row] == [2]
    state = torch.load(run / 'resume.pt', weights_only=True)
    best = torch.load(run / 'best.pt', weights_only=True)
    averaged = {k[len('module.'):]: v for k, v in state['ema'].items() if k.startswith('module.')}
    assert averaged.keys() == state['model'].keys() == best['model'].keys()
    weight = next(k for k, v in state['model'].items() if v.is_floating_point() and v.ndim == 4)
    # two epochs of steps from one start: the average lags the trained weights
    assert not torch.equal(averaged[weight], state['model'][weight])
    assert best['epoch'] == 2
    assert torch.equal(best['model'][weight], averaged[weight].half())
    # training/last_epoch.py keeps the last epoch (average or trained) once resume.pt goes
    last_epoch = [sys.executable, os.path.join(REPO, 'training', 'last_epoch.py'),
                  run / 'resume.pt']
    for extra, weights, score in (([], averaged, 'val_miou'),
                                  (['--trained'], state['model'], 'raw_val_miou')):
        written = subprocess.run(last_epoch + [tmp_path / 'last.pt'] + extra,
                                 capture_output=True, text=True, timeout=120)
        assert written.returncode == 0, written.stderr
        last = torch.load(tmp_path / 'last.pt', weights_only=True)
        assert last['epoch'] == 2 and last['miou'] == rows[-1][score]
        assert {k: v for k, v in last.items() if k not in ('model', 'epoch', 'miou')} == {
            k: v for k, v in best.items() if k not in ('model', 'epoch', 'miou')}
        assert torch.equal(last['model'][weight], weights[weight].half()), extra
    not_resume = subprocess.run(last_epoch[:-1] + [run / 'best.pt', tmp_path / 'x.pt'],
                                capture_output=True, text=True, timeout=120)
    assert not_resume.returncode == 1 and not (tmp_path / 'x.pt').exists()
    assert not_resume.stderr.strip() == (f'last_epoch: {run / "best.pt"}: not a resume.pt '
                                         '(no config, history)')
    for bad, message in ((['--ema', 0.5], 'trained with --ema 0.9, this run uses --ema 0.5'),
                         ([], 'trained with --ema 0.9, this run uses --ema 0')):
        refused = train(tiny_run(tmp_path / 'data', 3) + ['--out', run, '--resume',
                                                          run / 'resume.pt'] + bad)
        assert refused.returncode == 1 and 'Traceback' not in refused.stderr, refused.stderr
        assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_sequence_split_trains_and_validates_on_disjoint_sequences(tmp_path):
    """--train-sequences/--val-sequences pool train/ and val/ and split them by sequence."""
    make_dataset(tmp_path / 'data', count=4)
    names = sorted(os.listdir(tmp_path / 'data' / 'train'))
    # rename the val copies into a second sequence
    for name in names:
        for folder in ('val', 'valannot'):
            os.rename(tmp_path / 'data' / folder / name,
                      tmp_path / 'data' / folder / name.replace(name.split('_')[0], 'SeqB'))
    common = tiny_run(tmp_path / 'data', 1) + ['--out', tmp_path / 'run']
    train_sequence = names[0].split('_')[0]
    result = train(common + ['--train-sequences', 'SeqB', '--val-sequences', train_sequence])
    assert result.returncode == 0, result.stderr[-2000:]
    assert '4 train + 4 val images' in result.stdout
    for bad, message in ((['--train-sequences', 'SeqB', '--val-sequences', 'SeqB'],
                          'share SeqB'),
                         (['--train-sequences', 'SeqB', '--val-sequences', 'Nope'],
                          '--val-sequences Nope: no frames of that sequence'),
                         (['--train-sequences', 'SeqB'], 'go together')):
        refused = train(common + bad)
        assert refused.returncode == 1 and 'Traceback' not in refused.stderr, refused.stderr
        assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_all_frames_trains_on_train_and_val_and_writes_the_last_epoch(tmp_path):
    """--all-frames (the final model) pools train/ and val/ and keeps the last epoch."""
    import torch

    make_dataset(tmp_path / 'data', count=3)
    names = sorted(os.listdir(tmp_path / 'data' / 'val'))
    for name in names:  # val frames of another sequence, so the pooled set is 3 + 3 distinct
        for folder in ('val', 'valannot'):
            os.rename(tmp_path / 'data' / folder / name,
                      tmp_path / 'data' / folder / name.replace(name.split('_')[0], 'SeqB'))
    common = tiny_run(tmp_path / 'data', 2) + ['--out', tmp_path / 'run', '--all-frames']
    result = train(common)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '6 train + 3 val images' in result.stdout
    assert 'seen in training' in result.stdout and 'final weights' in result.stdout
    assert not (tmp_path / 'run' / 'best.pt').exists()
    final = torch.load(tmp_path / 'run' / 'final.pt', weights_only=True)
    assert final['epoch'] == 2
    refused = train(common + ['--train-sequences', 'SeqB', '--val-sequences', 'Nope'])
    assert refused.returncode == 1 and 'Traceback' not in refused.stderr, refused.stderr
    assert '--all-frames' in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_resume_from_another_architecture_is_refused(tmp_path):
    common = one_epoch_run(tmp_path, 'a')
    other = train(common + ['--out', tmp_path / 'b', '--arch', 'pspnet', '--resume',
                            tmp_path / 'a' / 'resume.pt'])
    assert other.returncode == 1 and 'Traceback' not in other.stderr
    assert "trained with arch 'lraspp', this run uses 'pspnet'" in other.stderr
    assert not (tmp_path / 'b' / 'history.json').exists()


def test_init_starts_from_a_checkpoint_on_another_backbone(tmp_path):
    """--init takes a dilated run's weights onto the undilated backbone with a fresh schedule."""
    import torch

    from seg_perception.models.data import AugmentConfig
    from seg_perception.models.train import TrainConfig, Trainer

    common = one_epoch_run(tmp_path, 'a')
    start = tmp_path / 'a' / 'best.pt'
    config = TrainConfig(data=str(tmp_path / 'data'), out=str(tmp_path / 'direct'),
                         backbone='mobilenet_v3_large_undilated', height=96, width=128,
                         batch_size=2, epochs=1, num_threads=1, init=str(start),
                         augment=AugmentConfig(crop_height=96, crop_width=128))
    trainer = Trainer(config, progress=False)
    saved = torch.load(start, weights_only=True)['model']
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, saved[key].to(value.dtype)), key
    assert trainer.epoch == 0 and trainer.history == []

    tuned = train(common + ['--out', tmp_path / 'b', '--backbone',
                            'mobilenet_v3_large_undilated', '--init', start])
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    state = torch.load(tmp_path / 'b' / 'resume.pt', weights_only=True)
    assert state['epoch'] == 1 and state['config']['init'] == str(start)
    assert state['config']['backbone'] == 'mobilenet_v3_large_undilated'


def assert_refused_before_training(command, cases):
    """Each (extra options, exit code, message) case fails with that message before epoch 1."""
    out = command[command.index('--out') + 1]
    for extra, code, message in cases:
        result = train(command + extra)
        assert result.returncode == code, (extra, result.stderr)
        assert message in result.stderr, (extra, result.stderr)
        lines = result.stderr.strip().splitlines()  # argparse prints its usage first
        assert len(lines) == 1 or (code == 2 and lines[0].startswith('usage:')
                                   and message in lines[-1]), result.stderr
        assert not (out / 'history.json').exists()


def test_bad_init(tmp_path):
    """--init with --resume, from another architecture, or from no file: one line, no epoch."""
    common = one_epoch_run(tmp_path, 'psp', '--arch', 'pspnet')
    missing = tmp_path / 'none.pt'
    cases = [(['--init', tmp_path / 'psp' / 'best.pt', '--resume',
               tmp_path / 'psp' / 'resume.pt'], 2, '--init starts a new run'),
             (['--init', tmp_path / 'psp' / 'best.pt'], 1,
              "trained with arch 'pspnet', this run uses 'lraspp'"),
             (['--init', missing], 1, f'{missing}: checkpoint not found')]
    assert_refused_before_training(common + ['--out', tmp_path / 'run'], cases)


def test_distillation_loss_is_zero_only_where_the_student_agrees_with_the_teachers():
    """T^2 * KL(teacher || student) over labelled pixels: 0 when equal, larger when apart."""
    import torch

    from seg_perception.models.train import distillation_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 6)
    target = torch.randint(0, 5, (2, 4, 6))
    for temperature in (1.0, 2.0):
        agreeing = torch.softmax(logits / temperature, 1)
        assert abs(float(distillation_loss(logits, agreeing, target, temperature))) < 1e-6
    apart = torch.softmax(torch.randn(2, 5, 4, 6), 1)
    loss = float(distillation_loss(logits, apart, target, 1.0))
    kl = (apart * (apart.log() - torch.log_softmax(logits, 1))).sum(1).mean()
    assert loss > 0.05 and abs(loss - float(kl)) < 1e-5
    # pixels labelled ignore (crop padding) do not count: disagree only there, loss stays 0
    padded = target.clone()
    padded[:, :, :3] = 255
    mixed = torch.softmax(logits, 1).clone()
    mixed[:, :, :, :3] = apart[:, :, :, :3]
    assert abs(float(distillation_loss(logits, mixed, padded, 1.0))) < 1e-6
    assert float(distillation_loss(logits, mixed, target, 1.0)) > 0.01
    assert float(distillation_loss(logits, apart, torch.full_like(target, 255), 1.0)) == 0


def test_lovasz_term_is_one_minus_the_mean_iou_of_confident_predictions():
    """
    For one-hot predictions Lovasz-softmax is exactly 1 - the mean IoU of the labelled classes.

    That is what makes it worth mixing into the loss: each class counts once, however few its
    pixels. The mix is (1 - w) * cross-entropy + w * Lovasz; ignored pixels do not count.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from seg_perception.models.train import segmentation_loss

    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (2, 8, 10))
    predicted = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, 5, target.shape))
    target[:, :2] = 255  # crop padding: whatever is predicted there does not count
    logits = torch.from_numpy(np.eye(5)[predicted].transpose(0, 3, 1, 2) * 40.0).float()
    labelled = target != 255
    ious = [((predicted == c) & (target == c)).sum()
            / (((predicted == c) & labelled) | (target == c)).sum()
            for c in np.unique(target[labelled])]
    target = torch.from_numpy(target)
    weight = torch.ones(5)
    cross_entropy = float(F.cross_entropy(logits, target, weight=weight, ignore_index=255))
    assert float(segmentation_loss(logits, target, weight, 0.0)) == cross_entropy
    assert abs(float(segmentation_loss(logits, target, weight, 0.0, 1.0))
               - (1 - np.mean(ious))) < 1e-5
    assert abs(float(segmentation_loss(logits, target, weight, 0.0, 0.25))
               - (0.75 * cross_entropy + 0.25 * (1 - np.mean(ious)))) < 1e-4
    assert 0.2 < 1 - np.mean(ious) < 0.8  # the case is neither all right nor all wrong


def test_a_lovasz_run_records_its_weight_and_resumes_only_with_it(tmp_path):
    """--lovasz-weight changes the loss, is stored, and a resume with another weight is refused."""
    common = one_epoch_run(tmp_path, 'lovasz', '--lovasz-weight', 0.5)
    plain = train(common + ['--out', tmp_path / 'plain'])
    assert plain.returncode == 0, plain.stderr[-2000:]
    runs = {run: json.loads((tmp_path / run / 'history.json').read_text())
            for run in ('lovasz', 'plain')}
    assert runs['lovasz']['config']['lovasz_weight'] == 0.5
    assert runs['lovasz']['history'][0]['loss'] != runs['plain']['history'][0]['loss']
    resume = common[:-1] + [2, '--out', tmp_path / 'lovasz', '--resume',
                            tmp_path / 'lovasz' / 'resume.pt']
    changed = train(resume)
    assert changed.returncode == 1, changed.stderr
    assert ('checkpoint was trained with --lovasz-weight 0.5, this run uses --lovasz-weight 0'
            in changed.stderr), changed.stderr
    assert len(json.loads((tmp_path / 'lovasz' / 'history.json').read_text())['history']) == 1
    bad = train(common + ['--out', tmp_path / 'bad', '--lovasz-weight', 1.5])
    assert bad.returncode == 2 and "'1.5' must be a number in [0, 1]" in bad.stderr, bad.stderr


def test_a_run_distils_from_teachers_of_another_architecture(tmp_path):
    """--teacher (twice, a PSPNet) changes the loss, is recorded, and resumes identically."""
    import torch

    common = one_epoch_run(tmp_path, 'teacher', '--arch', 'pspnet')
    saved = torch.load(tmp_path / 'teacher' / 'best.pt', weights_only=True)
    sequence = sorted(os.listdir(tmp_path / 'data' / 'train'))[0].split('_')[0]
    assert saved['trained_sequences'] == [sequence]
    plain = train(common + ['--out', tmp_path / 'plain'])
    assert plain.returncode == 0, plain.stderr[-2000:]
    teachers = ['--teacher', tmp_path / 'teacher' / 'best.pt',
                '--teacher', tmp_path / 'teacher' / 'resume.pt']
    distilled = train(common + ['--out', tmp_path / 'distilled', '--distill-weight', 0.8]
                      + teachers)
    assert distilled.returncode == 0, distilled.stderr[-2000:]

    def losses(run):
        return [row['loss'] for row in
                json.loads((tmp_path / run / 'history.json').read_text())['history']]

    assert losses('plain') != losses('distilled')  # same seed: only the teacher term differs
    state = torch.load(tmp_path / 'distilled' / 'resume.pt', weights_only=True)
    assert [os.path.basename(p) for p in state['config']['teachers']] == ['best.pt', 'resume.pt']
    assert state['config']['distill_weight'] == 0.8
    resumed = train(common[:-1] + [2, '--out', tmp_path / 'distilled', '--distill-weight', 0.8,
                                   '--resume', tmp_path / 'distilled' / 'resume.pt'] + teachers)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    changed = train(common[:-1] + [3, '--out', tmp_path / 'distilled', '--resume',
                                   tmp_path / 'distilled' / 'resume.pt'] + teachers)
    assert changed.returncode == 1 and '--distill-weight 0.8' in changed.stderr, changed.stderr


def test_bad_teacher(tmp_path):
    """A missing, mismatched or leaking teacher and stray --distill-* options: one line."""
    import torch

    common = one_epoch_run(tmp_path, 'a')
    best = tmp_path / 'a' / 'best.pt'
    state = torch.load(best, weights_only=True)
    state['classes'] = 'cityscapes'
    torch.save(state, tmp_path / 'other_classes.pt')
    # bare weights (a model state dict saved by hand) cannot say which network to build
    torch.save({'model': state['model']}, tmp_path / 'weights_only.pt')
    # a teacher that trained on the sequence this run validates on but does not train on
    sequence = state['trained_sequences'][0]
    for name in sorted(os.listdir(tmp_path / 'data' / 'train')):
        for folder in ('train', 'trainannot'):
            os.rename(tmp_path / 'data' / folder / name,
                      tmp_path / 'data' / folder / name.replace(sequence, 'SeqB'))
    split = ['--train-sequences', 'SeqB', '--val-sequences', sequence]
    missing = tmp_path / 'none.pt'
    cases = [(['--teacher', missing], 1, f'{missing}: checkpoint not found'),
             (['--teacher', tmp_path / 'other_classes.pt'], 1,
              "trained with classes 'cityscapes', this run uses 'camvid'"),
             (['--teacher', tmp_path / 'weights_only.pt'], 1,
              'weights_only.pt: --teacher checkpoint records no architecture'),
             (split + ['--teacher', best], 1,
              f'--teacher trained on sequence {sequence}, which this run validates on'),
             (['--distill-weight', 0.5], 2, 'need --teacher'),
             (['--teacher', best, '--distill-weight', 1.5], 2, 'must be a number in [0, 1]')]
    assert_refused_before_training(common + ['--out', tmp_path / 'run'], cases)
    # the same teacher is fine for a run that trains on that sequence too (all frames)
    seen = train(common + ['--out', tmp_path / 'seen', '--all-frames', '--teacher', best])
    assert seen.returncode == 0, seen.stderr[-2000:]
