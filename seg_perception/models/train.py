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
Training loop for zoo models on CamVid-style data (CPU or CUDA), resumable every epoch.

Checkpoints: ``resume.pt`` (the whole run state: fp32 weights, optimizer, epoch, history, RNG;
what ``--resume`` continues, identically to an uninterrupted run) and ``best.pt`` (fp16 state
dict of the best validation mIoU, small enough to commit); a run on all frames
(``all_frames``) has no held-out frames to pick an epoch on, so it writes ``final.pt`` (the same
format) after every epoch instead. With ``ema_decay`` the run keeps an exponential moving average
of the weights (and batch-norm statistics) beside the trained ones: the average is what is
validated, picked and deployed, and the trained weights' score is logged as ``raw_val_miou``
(what the same run would deploy without EMA, so the two compare epoch for epoch). With
``teachers`` the loss adds knowledge distillation: the mean softmax of frozen teacher networks
(other runs' checkpoints, any zoo architecture) as a soft target beside the labels. Logs:
``history.csv``,
``history.json`` and ``curves.png``. Validation runs the deployed geometry: the
full image resized to the model input, prediction resized back (NEAREST) and scored against the
full-size labels with the core metrics.
"""

import csv
from dataclasses import asdict, dataclass, field
import json
import math
import os
import time
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from seg_perception.core.errors import DataError, ModelLoadError, one_line
from seg_perception.core.metrics import ConfusionMatrix
from seg_perception.core.spec import ClassTable, IMAGENET_MEAN, IMAGENET_STD, load_class_table
from seg_perception.models.data import (augment, AugmentConfig, class_weights, list_pairs,
                                        load_pairs, Sample, sequence_of, sequence_split)
from seg_perception.models.zoo import (check_input_size, create_model, load_checkpoint,
                                       resolve_backbone, ZooError)


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint)."""

    arch: str = 'lraspp'
    backbone: Optional[str] = None
    data: str = ''
    out: str = 'runs/train'
    classes: str = 'camvid'
    epochs: int = 200
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 3
    poly_power: float = 0.9
    class_weight_power: float = 0.5
    ohem_fraction: float = 0.0
    # share of the Lovasz-softmax loss (a convex surrogate of each class's IoU) in the labels'
    # loss, the rest being the class-weighted cross-entropy (0 = cross-entropy alone)
    lovasz_weight: float = 0.0
    bn_momentum: float = 0.1
    height: int = 360
    width: int = 480
    val_every: int = 1
    num_threads: int = 0
    workers: int = 0
    amp: bool = False
    seed: int = 0
    max_train_items: Optional[int] = None
    max_val_items: Optional[int] = None
    # sequence-disjoint split: frames of these sequences from train/ and val/ pooled (empty =
    # the folder's own train/ and val/ splits)
    train_sequences: Tuple[str, ...] = ()
    val_sequences: Tuple[str, ...] = ()
    # the final model: train on train/ and val/ together with a schedule chosen on a disjoint
    # split; val/ is then seen in training and only reported as a sanity check
    all_frames: bool = False
    # decay of the weight EMA updated after every optimizer step (0 = off, the bundled recipe)
    ema_decay: float = 0.0
    # checkpoint whose weights the run starts from, with a fresh optimizer and schedule
    # (fine-tuning, e.g. a dilated run onto the undilated backbone); '' = random initialization
    init: str = ''
    # knowledge distillation: checkpoints of frozen teachers (any zoo architecture, same class
    # table) whose mean softmax at ``distill_temperature`` is a soft target; the loss is
    # (1 - distill_weight) * cross-entropy + distill_weight * T^2 * KL(teachers || student)
    teachers: Tuple[str, ...] = ()
    distill_weight: float = 0.5
    distill_temperature: float = 1.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def load_training_data(config: TrainConfig, table: ClassTable
                       ) -> Tuple[List[Sample], List[Sample]]:
    """Return (train, val) samples: the folder's splits, a split by sequence, or all frames."""
    if config.all_frames and (config.train_sequences or config.val_sequences):
        raise DataError('--all-frames trains on every frame of train/ and val/; it does not go '
                        'with --train-sequences/--val-sequences')
    if bool(config.train_sequences) != bool(config.val_sequences):
        raise DataError('--train-sequences and --val-sequences go together (a sequence split '
                        'needs both sides)')
    if config.train_sequences:
        train_pairs, val_pairs = sequence_split(config.data, config.train_sequences,
                                                config.val_sequences)
    elif config.all_frames:
        val_pairs = list_pairs(config.data, 'val')
        train_pairs = list_pairs(config.data, 'train') + val_pairs
    else:
        train_pairs, val_pairs = list_pairs(config.data, 'train'), list_pairs(config.data, 'val')
    return (load_pairs(train_pairs[:config.max_train_items], table),
            load_pairs(val_pairs[:config.max_val_items], table))


def poly_lr(config: TrainConfig, progress: float) -> float:
    """Linear warm-up then polynomial decay; ``progress`` is in epochs (fractional)."""
    if progress < config.warmup_epochs:
        return config.lr * max(progress / config.warmup_epochs, 0.05)
    remaining = 1 - (progress - config.warmup_epochs) / max(config.epochs - config.warmup_epochs,
                                                            1e-6)
    return config.lr * max(remaining, 0.0) ** config.poly_power


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """Convert N x H x W x 3 uint8 RGB to normalized float N x 3 x H x W (spec mean/std)."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    batch = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255)
    return (batch - mean) / std


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                      ohem_fraction: float, lovasz_weight: float = 0.0) -> torch.Tensor:
    """
    Return the labels' loss: class-weighted cross-entropy, optionally mixed with Lovasz-softmax.

    With ``ohem_fraction`` > 0 only the hardest pixels count in the cross-entropy. With
    ``lovasz_weight`` w > 0 the loss is (1 - w) * cross-entropy + w * Lovasz-softmax (Berman et
    al., CVPR 2018, as segmentation-models-pytorch has it): it optimizes each class's IoU
    directly, so a thin class's few pixels weigh as much as the road's many.
    """
    cross_entropy = hard_pixel_cross_entropy(logits, target, weight, ohem_fraction)
    if lovasz_weight <= 0:
        return cross_entropy
    from segmentation_models_pytorch.losses import LovaszLoss

    lovasz = LovaszLoss('multiclass', ignore_index=255)(logits, target)
    return (1 - lovasz_weight) * cross_entropy + lovasz_weight * lovasz


def hard_pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                             ohem_fraction: float) -> torch.Tensor:
    """Class-weighted cross-entropy; with ``ohem_fraction`` > 0 only the hardest pixels count."""
    if ohem_fraction <= 0:
        return F.cross_entropy(logits, target, weight=weight, ignore_index=255)
    losses = F.cross_entropy(logits, target, weight=weight, ignore_index=255,
                             reduction='none').flatten()
    valid = losses[target.flatten() != 255]
    if valid.numel() == 0:
        return losses.sum() * 0
    keep = max(1, int(valid.numel() * ohem_fraction))
    return torch.topk(valid, keep).values.mean()


def distillation_loss(logits: torch.Tensor, teacher_probs: torch.Tensor, target: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """
    Return T^2 * KL(teacher || student) per labelled pixel (Hinton et al. 2015, pixel-wise).

    Pixels labelled ignore (255: crop padding, void) carry no image the teachers saw, so they
    are left out as in the cross-entropy; the T^2 keeps the gradient scale independent of T.
    """
    log_student = F.log_softmax(logits / temperature, dim=1)
    kl = (teacher_probs * (teacher_probs.clamp_min(1e-8).log() - log_student)).sum(1)
    valid = target != 255
    if not bool(valid.any()):
        return kl.sum() * 0
    return kl[valid].mean() * temperature ** 2


def load_teacher(path: str, classes: str, own_sequences: Set[str], val_sequences: Set[str],
                 device: torch.device) -> torch.nn.Module:
    """
    Build a frozen teacher from a run's checkpoint (best.pt, final.pt, last.pt or resume.pt).

    The checkpoint names its own architecture; its class table must be ours. A teacher that
    trained on sequences this run validates on but does not train on would carry those frames
    into the student and flatter its validation score, so it is refused; a checkpoint that does
    not record its training sequences cannot be checked and is taken as the user's word.
    """
    state = read_checkpoint(path, device)
    saved = state.get('config', state)
    arch, backbone = saved.get('arch'), saved.get('backbone')
    if not isinstance(arch, str):
        raise DataError(f"{path}: --teacher checkpoint records no architecture (give a run's "
                        'best.pt, final.pt, last.pt or resume.pt)')
    if saved.get('classes', classes) != classes:
        raise DataError(f'{path}: --teacher was trained with classes {saved["classes"]!r}, '
                        f'this run uses {classes!r}')
    leaked = sorted((set(state.get('trained_sequences') or ()) & val_sequences)
                    - own_sequences)
    if leaked:
        raise DataError(f'{path}: --teacher trained on sequence {", ".join(leaked)}, which this '
                        'run validates on and does not train on; it would flatter the '
                        'validation score')
    try:
        teacher = create_model(arch, backbone, load_class_table(classes).num_classes,
                               weights=path)
    except (ModelLoadError, ZooError) as error:
        raise DataError(str(error)) from None
    teacher = teacher.float().to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_probabilities(teachers: List[torch.nn.Module], images: torch.Tensor,
                          temperature: float) -> torch.Tensor:
    """Return the teachers' mean softmax at ``temperature``, at the size of ``images``."""
    total = None
    for teacher in teachers:
        logits = teacher(images).float()
        if logits.shape[-2:] != images.shape[-2:]:
            logits = F.interpolate(logits, size=images.shape[-2:], mode='bilinear',
                                   align_corners=False)
        probs = torch.softmax(logits / temperature, dim=1)
        total = probs if total is None else total + probs
    return total / len(teachers)


@torch.no_grad()
def evaluate(model: torch.nn.Module, samples: List[Sample], num_classes: int, height: int,
             width: int, device: torch.device) -> ConfusionMatrix:
    """Score full images at the deployed input size; return the confusion matrix."""
    model.eval()
    matrix = ConfusionMatrix(num_classes)
    for sample in samples:
        resized = cv2.resize(sample.image, (width, height), interpolation=cv2.INTER_LINEAR)
        logits = model(to_tensor(resized[None], device))
        pred = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
        full = cv2.resize(pred, (sample.labels.shape[1], sample.labels.shape[0]),
                          interpolation=cv2.INTER_NEAREST)
        matrix.update(sample.labels, full)
    return matrix


class AugmentedBatches(torch.utils.data.Dataset):
    """One epoch's augmented batches; batch ``k`` uses a generator seeded by (seed, epoch, k)."""

    def __init__(self, samples: List[Sample], order: np.ndarray, config: TrainConfig,
                 epoch: int) -> None:
        self.samples = samples
        self.order = order
        self.config = config
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.order) // self.config.batch_size

    def __getitem__(self, step: int) -> Tuple[torch.Tensor, torch.Tensor]:
        size = self.config.batch_size
        rng = np.random.default_rng([self.config.seed, self.epoch, step])
        batch = [augment(self.samples[i], self.config.augment, rng)
                 for i in self.order[step * size:(step + 1) * size]]
        return (torch.from_numpy(np.stack([b[0] for b in batch])),
                torch.from_numpy(np.stack([b[1] for b in batch])))


class Trainer:
    """Own the model, optimizer, data and logs of one run; ``fit()`` trains to the end."""

    def __init__(self, config: TrainConfig, resume: Optional[str] = None,
                 progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        config.arch, config.backbone = resolve_backbone(config.arch, config.backbone)
        check_input_size(config.arch, config.backbone, config.height, config.width)
        check_input_size(config.arch, config.backbone, config.augment.crop_height,
                         config.augment.crop_width)
        if config.num_threads > 0:
            torch.set_num_threads(config.num_threads)
        self.device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
        self.table = load_class_table(config.classes)
        self.num_classes = self.table.num_classes
        self.train_set, self.val_set = load_training_data(config, self.table)
        if len(self.train_set) < config.batch_size:  # an epoch would make no optimizer step
            raise DataError(f'{config.data}: {len(self.train_set)} training images, fewer than '
                            f'the batch size {config.batch_size}; lower --batch-size')
        # recorded in every checkpoint, so a run distilled from this one can check for leaks
        self.trained_sequences = sorted({sequence_of(sample.name) for sample in self.train_set})
        weights = class_weights(self.train_set, self.num_classes,
                                power=config.class_weight_power)
        self.class_weight = torch.tensor(weights, device=self.device)
        torch.manual_seed(config.seed)
        self.model = create_model(config.arch, config.backbone, self.num_classes).to(self.device)
        for module in self.model.modules():
            # torchvision's MobileNetV3 uses momentum 0.01: with ~45 steps per epoch the running
            # statistics lag the weights for many epochs and eval-mode output collapses.
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = config.bn_momentum
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.ema: Optional[AveragedModel] = None
        if config.ema_decay > 0:
            self.ema = AveragedModel(self.model, multi_avg_fn=warmed_up_ema(config.ema_decay),
                                     use_buffers=True)
        validated = {sequence_of(sample.name) for sample in self.val_set}
        self.teachers = [load_teacher(path, config.classes, set(self.trained_sequences),
                                      validated, self.device) for path in config.teachers]
        self.rng = np.random.default_rng(config.seed)
        self.epoch = 0
        self.best_miou = -1.0
        self.history: List[Dict[str, float]] = []
        os.makedirs(config.out, exist_ok=True)
        if resume:
            self.load(resume)
        elif config.init:
            self.start_from(config.init)

    # -- checkpoints ---------------------------------------------------------------------------
    def load(self, path: str) -> None:
        """
        Continue a run from ``resume.pt`` (weights, optimizer, epoch, history, RNG states).

        Loaded weights-only (tensors and plain containers, no code); a checkpoint of another
        architecture or class table is refused before any epoch runs.
        """
        state = read_checkpoint(path, self.device)
        self.check_compatible(path, state.get('config'))
        try:
            model_state = self.model.state_dict()
            self.model.load_state_dict({k: v.to(model_state[k].dtype)
                                        for k, v in state['model'].items()})
            if 'optimizer' in state:
                self.optimizer.load_state_dict(state['optimizer'])
            self.epoch = int(state['epoch'])
            if self.ema is not None:
                self.ema.load_state_dict(state['ema'])
        except Exception as error:  # noqa: BLE001 - load_state_dict raises many types
            raise DataError(f'{path}: not a checkpoint of this architecture and class count '
                            f'({one_line(error)})') from None
        self.best_miou = state.get('best_miou', state.get('miou', -1.0))
        if not os.path.isfile(os.path.join(self.config.out, self.weights_name)):
            self.best_miou = -1.0  # resumed into a new run folder: its first validation is best
        self.history = state.get('history', [])
        if 'rng' in state:
            self.rng.bit_generator.state = state['rng']
            torch.set_rng_state(state['torch_rng'].cpu())

    def start_from(self, path: str) -> None:
        """
        Take the weights of another run's checkpoint (best.pt, final.pt, last.pt or resume.pt).

        Same architecture and class table; the backbone may differ where every weight fits
        (MobileNetV3 dilated or not), which is what fine-tuning onto a cheaper network needs.
        """
        state = read_checkpoint(path, self.device)
        saved = state.get('config', state)
        for key in ('arch', 'classes'):
            ours = getattr(self.config, key)
            if isinstance(saved, dict) and key in saved and saved[key] != ours:
                raise DataError(f'{path}: --init weights were trained with {key} '
                                f'{saved[key]!r}, this run uses {ours!r}')
        try:
            load_checkpoint(self.model, path, other_backbone=True)
        except ModelLoadError as error:
            raise DataError(str(error)) from None

    def check_compatible(self, path: str, saved: object) -> None:
        """Refuse a checkpoint whose architecture, backbone or class table differs from ours."""
        if not isinstance(saved, dict):
            return  # an older checkpoint without its config: the state dict check decides
        for key in ('arch', 'backbone', 'classes'):
            ours = getattr(self.config, key)
            if key in saved and saved[key] != ours:
                raise DataError(f'{path}: checkpoint was trained with {key} {saved[key]!r}, '
                                f'this run uses {ours!r}')
        # checkpoints from before --ema and --lovasz-weight have no such entry: they ran with 0
        for key, option in (('ema_decay', '--ema'), ('lovasz_weight', '--lovasz-weight')):
            saved_value, ours = saved.get(key, 0.0), getattr(self.config, key)
            if saved_value != ours:
                raise DataError(f'{path}: checkpoint was trained with {option} {saved_value:g}, '
                                f'this run uses {option} {ours:g}; resume with the same')
        # checkpoints from before --teacher have none of these: they ran with the defaults
        saved_distill = (tuple(saved.get('teachers', ())),
                         saved.get('distill_weight', TrainConfig.distill_weight),
                         saved.get('distill_temperature', TrainConfig.distill_temperature))
        ours = (tuple(self.config.teachers), self.config.distill_weight,
                self.config.distill_temperature)
        if saved_distill != ours:
            raise DataError(f'{path}: checkpoint was trained with teachers {saved_distill[0]}, '
                            f'--distill-weight {saved_distill[1]:g}, --distill-temperature '
                            f'{saved_distill[2]:g}; this run uses {ours[0]}, {ours[1]:g}, '
                            f'{ours[2]:g}; resume with the same')

    def save(self, best: bool) -> None:
        """
        Write resume.pt every epoch (atomically) and best.pt (fp16, small) on a new best.

        An all-frames run writes final.pt (fp16) every epoch instead of best.pt: its val frames
        are in its training set, so a best epoch picked on them would flatter it again.

        ``resume.pt`` is the whole state of the run (fp32 weights, AdamW moments, epoch, history,
        both RNG states), so ``--resume`` continues exactly as an uninterrupted run would.
        """
        state = {'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
                 'epoch': self.epoch, 'best_miou': self.best_miou, 'history': self.history,
                 'rng': self.rng.bit_generator.state, 'torch_rng': torch.get_rng_state(),
                 'config': asdict(self.config), 'trained_sequences': self.trained_sequences}
        if self.ema is not None:
            state['ema'] = self.ema.state_dict()
        atomic_torch_save(state, os.path.join(self.config.out, 'resume.pt'))
        if best or self.config.all_frames:
            atomic_torch_save(deployable_checkpoint(self.deployed.state_dict(), self.epoch,
                                                    self.best_miou, asdict(self.config),
                                                    self.num_classes, self.trained_sequences),
                              os.path.join(self.config.out, self.weights_name))

    @property
    def deployed(self) -> torch.nn.Module:
        """Return the weights that are validated and written out: the EMA when there is one."""
        return self.model if self.ema is None else self.ema.module

    @property
    def weights_name(self) -> str:
        """Return the file name of the run's deployable weights (best.pt or final.pt)."""
        return 'final.pt' if self.config.all_frames else 'best.pt'

    # -- loop ----------------------------------------------------------------------------------
    def batches(self, order: np.ndarray, steps: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """
        Yield the epoch's augmented (images, labels) batches.

        With ``workers`` 0 the crops come from the run's own generator in this process (the
        recipe of the bundled model). With workers, a torch DataLoader makes them in worker
        processes, batch ``k`` from a generator seeded by (seed, epoch, k), so a run is the same
        for any number of workers.
        """
        config = self.config
        if config.workers <= 0:
            for step in range(steps):
                batch = [augment(self.train_set[i], config.augment, self.rng)
                         for i in order[step * config.batch_size:(step + 1) * config.batch_size]]
                yield np.stack([b[0] for b in batch]), np.stack([b[1] for b in batch])
            return
        dataset = AugmentedBatches(self.train_set, order, config, self.epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False,
                                             num_workers=config.workers, prefetch_factor=4)
        for images, labels in loader:
            yield images.numpy(), labels.numpy()

    def train_epoch(self) -> float:
        """Run one epoch over shuffled augmented crops; return the mean loss."""
        config = self.config
        self.model.train()
        order = self.rng.permutation(len(self.train_set))
        steps = len(order) // config.batch_size
        losses = []
        bar = tqdm(self.batches(order, steps), total=steps,
                   desc=f'epoch {self.epoch + 1}/{config.epochs}',
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        for step, (crops, crop_labels) in enumerate(bar):
            lr = poly_lr(config, self.epoch + step / steps)
            for group in self.optimizer.param_groups:
                group['lr'] = lr
            images = to_tensor(crops, self.device)
            target = torch.from_numpy(crop_labels).long().to(self.device, non_blocking=True)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                                enabled=config.amp):
                logits = self.model(images)
                soft_target = (teacher_probabilities(self.teachers, images,
                                                     config.distill_temperature)
                               if self.teachers else None)
            loss = segmentation_loss(logits.float(), target, self.class_weight,
                                     config.ohem_fraction, config.lovasz_weight)
            if soft_target is not None:
                loss = ((1 - config.distill_weight) * loss + config.distill_weight
                        * distillation_loss(logits.float(), soft_target, target,
                                            config.distill_temperature))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f'{np.mean(losses[-20:]):.3f}', lr=f'{lr:.2e}')
        return float(np.mean(losses)) if losses else math.nan

    def fit(self) -> Dict[str, float]:
        """Train until ``config.epochs``; validate, log and checkpoint every epoch."""
        config = self.config
        while self.epoch < config.epochs:
            started = time.time()
            loss = self.train_epoch()
            self.epoch += 1
            row = {'epoch': self.epoch, 'loss': loss, 'lr': poly_lr(config, self.epoch),
                   'seconds': time.time() - started}
            best = False
            if self.epoch % config.val_every == 0 or self.epoch == config.epochs:
                matrix = evaluate(self.deployed, self.val_set, self.num_classes, config.height,
                                  config.width, self.device)
                if self.ema is not None:
                    raw = evaluate(self.model, self.val_set, self.num_classes, config.height,
                                   config.width, self.device)
                    row['raw_val_miou'] = float(raw.miou()) * 100
                iou = matrix.iou()
                row.update({'val_miou': float(matrix.miou()) * 100,
                            'val_pixel_acc': float(matrix.pixel_accuracy()) * 100})
                row.update({f'iou_{name}': float(v) * 100
                            for name, v in zip(self.table.class_names, iou)})
                best = row['val_miou'] > self.best_miou
                self.best_miou = max(self.best_miou, row['val_miou'])
            self.history.append(row)
            self.save(best)
            self.write_logs()
            shown = ''
            if 'val_miou' in row:
                shown = (f'val mIoU {row["val_miou"]:.1f} (seen in training)'
                         if config.all_frames else
                         f'val mIoU {row["val_miou"]:.1f} (best {self.best_miou:.1f})')
            print(f'epoch {self.epoch}/{config.epochs} loss {loss:.3f} {shown} '
                  f'{row["seconds"]:.0f}s', flush=True)
        return self.history[-1] if self.history else {}

    def write_logs(self) -> None:
        """Write history.csv/json and the training curves PNG."""
        out = self.config.out
        keys = sorted({k for row in self.history for k in row},
                      key=lambda k: (k != 'epoch', k))
        with open(os.path.join(out, 'history.csv'), 'w', newline='') as stream:
            writer = csv.DictWriter(stream, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
        with open(os.path.join(out, 'history.json'), 'w') as stream:
            json.dump({'config': asdict(self.config), 'history': self.history}, stream,
                      indent=1)
        plot_curves(self.history, os.path.join(out, 'curves.png'))


def read_checkpoint(path: str, device: torch.device) -> Dict[str, object]:
    """Load a checkpoint weights-only (tensors and plain containers, no code) or say why not."""
    if not os.path.isfile(path):
        raise DataError(f'{path}: checkpoint not found')
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load raises many types for bad files
        raise DataError(f'{path}: not a checkpoint ({one_line(error)})') from None
    if not isinstance(state, dict) or not isinstance(state.get('model'), dict):
        raise DataError(f'{path}: not a checkpoint (no model state dict)')
    return state


def deployable_checkpoint(weights: Dict[str, torch.Tensor], epoch: int, miou: float,
                          config: Dict[str, object], num_classes: int,
                          trained_sequences: Optional[List[str]]) -> Dict[str, object]:
    """
    Return the small fp16 file (best.pt, final.pt) that the zoo, export and evaluate load.

    ``trained_sequences`` (None where a run did not record them) lets a run distilled from this
    one refuse it as a teacher that saw its validation frames.
    """
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in weights.items()}
    checkpoint = {'model': half, 'epoch': epoch, 'miou': miou, 'arch': config['arch'],
                  'backbone': config['backbone'], 'num_classes': num_classes,
                  'classes': config['classes'], 'height': config['height'],
                  'width': config['width']}
    if trained_sequences is not None:
        checkpoint['trained_sequences'] = list(trained_sequences)
    return checkpoint


def last_epoch_checkpoint(resume_path: str, trained: bool = False) -> Dict[str, object]:
    """
    Return the deployable weights of a resume.pt's last epoch (its EMA when it has one).

    best.pt is the epoch picked on the validation frames, which flatters it; the end of the
    schedule is what an all-frames run ships, so a trial is judged on it. ``trained`` takes the
    trained weights of an EMA run instead of the average; ``miou`` is the last validation score
    of the weights taken (NaN when the run never validated them).
    """
    state = read_checkpoint(resume_path, torch.device('cpu'))
    missing = sorted({'config', 'epoch', 'history'} - set(state))
    if missing:
        raise DataError(f"{resume_path}: not a resume.pt (no {', '.join(missing)})")
    averaged = 'ema' in state and not trained
    if averaged:
        weights = {k[len('module.'):]: v for k, v in state['ema'].items()
                   if k.startswith('module.')}
    else:
        weights = state['model']
    key = 'val_miou' if averaged or 'ema' not in state else 'raw_val_miou'
    scores = [row[key] for row in state['history']
              if row['epoch'] == state['epoch'] and key in row]
    config = state['config']
    num_classes = load_class_table(config['classes']).num_classes
    return deployable_checkpoint(weights, state['epoch'], scores[0] if scores else math.nan,
                                 config, num_classes, state.get('trained_sequences'))


def warmed_up_ema(decay: float) -> Callable[[list, list, torch.Tensor], None]:
    """
    Return torch's EMA update with the decay warmed up as ``min(decay, (1 + n) / (10 + n))``.

    TensorFlow's ExponentialMovingAverage rule (``num_updates``): with a fixed 0.999 from the
    first step the average keeps half of the random initial weights after 700 steps (16 epochs
    of CamVid), and the averaged batch-norm variances of those make it call every pixel road;
    with the warm-up the average follows the young model and reaches the full decay late in the
    run, where it matters.
    """
    def update(averaged: list, current: list, num_averaged: torch.Tensor) -> None:
        steps = float(num_averaged)
        step_decay = min(decay, (1 + steps) / (10 + steps))
        get_ema_multi_avg_fn(step_decay)(averaged, current, num_averaged)
    return update


def plot_curves(history: List[Dict[str, float]], path: str) -> None:
    """Plot training loss and validation mIoU per epoch."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [row['epoch'] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [row['loss'] for row in history])
    left.set_xlabel('epoch')
    left.set_ylabel('training loss')
    val = [(row['epoch'], row['val_miou'], row.get('iou_Road', math.nan))
           for row in history if 'val_miou' in row]
    if val:
        right.plot([v[0] for v in val], [v[1] for v in val], label='val mIoU')
        raw = [(row['epoch'], row['raw_val_miou']) for row in history if 'raw_val_miou' in row]
        if raw:
            right.plot([v[0] for v in raw], [v[1] for v in raw], label='val mIoU (no EMA)')
        right.plot([v[0] for v in val], [v[2] for v in val], label='val road IoU')
        right.legend()
    right.set_xlabel('epoch')
    right.set_ylabel('%')
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def atomic_torch_save(obj: object, path: str) -> None:
    """Save with torch.save to a temp file, then rename (a crash never leaves half a file)."""
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)
