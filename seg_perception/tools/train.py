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

"""``seg-perception train``: train a zoo model on CamVid-style data, resumable every epoch."""

import argparse
import os
from typing import Tuple

from seg_perception.core.errors import DataError, UsageError
from seg_perception.models.zoo import ARCHITECTURES
from seg_perception.tools.argtypes import (non_negative_float, non_negative_int, positive_float,
                                           positive_int, within)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the training options."""
    parser.add_argument('--arch', default='lraspp', choices=sorted(ARCHITECTURES))
    parser.add_argument('--backbone', help='backbone/encoder (default: the arch default)')
    parser.add_argument('--data', required=True,
                        help='folder with train/ trainannot/ val/ valannot/ '
                             '(the SegNet CamVid layout)')
    parser.add_argument('--out', required=True, help='run folder (checkpoints, logs, curves)')
    parser.add_argument('--classes', default='camvid', help='class table name or YAML path')
    parser.add_argument('--epochs', type=positive_int, default=200)
    parser.add_argument('--resume', metavar='CKPT',
                        help='continue from the resume.pt of a run (exactly as if never stopped)')
    parser.add_argument('--init', metavar='CKPT', default='',
                        help='start from the weights of this checkpoint (best.pt, final.pt, '
                             'last.pt or resume.pt of a run with the same architecture and '
                             'class table) with a fresh optimizer and schedule: fine-tuning, '
                             'e.g. onto the undilated backbone')
    parser.add_argument('--train-sequences', type=sequence_list, default=(), metavar='A,B',
                        help='train on the frames of these recording sequences (file-name '
                             'prefix before "_"), taken from train/ and val/ together')
    parser.add_argument('--val-sequences', type=sequence_list, default=(), metavar='C',
                        help='validate on these sequences (must not overlap the training '
                             'ones); with --train-sequences')
    parser.add_argument('--all-frames', action='store_true',
                        help='train on train/ and val/ together (the final model, with a '
                             'schedule chosen on a sequence-disjoint split); writes the last '
                             "epoch's weights to final.pt, val is reported as seen frames")
    parser.add_argument('--height', type=positive_int, default=360, help='deployed input height')
    parser.add_argument('--width', type=positive_int, default=480, help='deployed input width')
    parser.add_argument('--crop', default='288x384', help='training crop HxW')
    parser.add_argument('--scale', default='0.5-1.75', metavar='MIN-MAX',
                        help='random rescale range of the training frames before the crop')
    parser.add_argument('--batch-size', type=positive_int, default=8)
    parser.add_argument('--lr', type=positive_float, default=2e-3)
    parser.add_argument('--weight-decay', type=non_negative_float, default=1e-4)
    parser.add_argument('--class-weight-power', type=non_negative_float, default=0.5,
                        help='median-frequency class weights ** power (0 = unweighted)')
    parser.add_argument('--ohem', type=within(0.0, 0.99), default=0.0,
                        help='keep only this fraction of hardest pixels in the loss (0 = off)')
    parser.add_argument('--lovasz-weight', type=within(0.0, 1.0), default=None, metavar='W',
                        help="share of the Lovasz-softmax loss, a surrogate of each class's IoU, "
                             'in the loss; the rest is the class-weighted cross-entropy '
                             '(0 = cross-entropy alone)')
    parser.add_argument('--ema', type=within(0.0, 0.99999), default=0.0, metavar='DECAY',
                        help='validate and deploy an exponential moving average of the weights '
                             'with this decay per optimizer step, e.g. 0.999, warmed up as '
                             'min(DECAY, (1 + n) / (10 + n)) (0 = off)')
    parser.add_argument('--teacher', action='append', default=[], metavar='CKPT',
                        help="distill from this frozen network (a run's best.pt, final.pt, "
                             'last.pt or resume.pt; any zoo architecture, same class table); '
                             'repeat for an ensemble, whose mean softmax is the soft target')
    parser.add_argument('--distill-weight', type=within(0.0, 1.0), default=None,
                        help='share of the distillation term in the loss, the rest being the '
                             "labels' cross-entropy (default an even share; with --teacher)")
    parser.add_argument('--distill-temperature', type=positive_float, default=None,
                        help='softmax temperature of teachers and student in the distillation '
                             'term (default 1, the plain softmax; with --teacher)')
    parser.add_argument('--threads', type=non_negative_int, default=0,
                        help='torch CPU threads (0 = all)')
    parser.add_argument('--workers', type=non_negative_int, default=0,
                        help='DataLoader processes making augmented batches (0 = in the '
                             'training process, the bundled recipe; use several on a GPU)')
    parser.add_argument('--amp', action='store_true',
                        help='bfloat16 autocast for the forward pass (for GPUs)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--val-every', type=positive_int, default=1)
    parser.add_argument('--max-items', type=positive_int,
                        help='use only the first N train/val pairs')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def sequence_list(text: str) -> Tuple[str, ...]:
    """Parse a comma-separated list of sequence names (at least one)."""
    names = tuple(name.strip() for name in text.split(',') if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f'expected sequence names like 0001TP,0016E5, got '
                                         f'{text!r}')
    return names


def given(**options: object) -> dict:
    """Return the options the user gave (not None), so TrainConfig keeps the defaults."""
    return {name: value for name, value in options.items() if value is not None}


def run(args: argparse.Namespace) -> int:
    """Validate the data up front, then train (or continue) and print the final numbers."""
    from seg_perception.models.data import AugmentConfig
    from seg_perception.models.train import TrainConfig, Trainer

    try:
        crop_h, crop_w = (int(v) for v in args.crop.lower().split('x'))
    except ValueError:
        raise DataError(f'--crop {args.crop!r}: expected HxW, e.g. 288x384') from None
    try:
        scale_min, scale_max = (float(v) for v in args.scale.split('-'))
    except ValueError:
        raise UsageError(f'--scale {args.scale!r}: expected MIN-MAX, e.g. 0.5-2.0') from None
    if not 0 < scale_min <= scale_max <= 8:
        raise UsageError(f'--scale {args.scale!r}: need 0 < MIN <= MAX <= 8')
    if not os.path.isdir(args.data):
        raise DataError(f'{args.data}: data folder not found')
    if args.workers < 0:
        raise DataError(f'--workers must be >= 0, got {args.workers}')
    if args.init and args.resume:
        raise UsageError('--init starts a new run from weights, --resume continues one; give '
                         'one of them')
    if not args.teacher and (args.distill_weight is not None
                             or args.distill_temperature is not None):
        raise UsageError('--distill-weight and --distill-temperature need --teacher')
    if args.resume and not os.path.exists(args.resume):
        raise DataError(f'{args.resume}: checkpoint to resume not found')
    config = TrainConfig(
        arch=args.arch, backbone=args.backbone, data=args.data, out=args.out,
        classes=args.classes, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, class_weight_power=args.class_weight_power,
        ohem_fraction=args.ohem, height=args.height, width=args.width,
        val_every=args.val_every, num_threads=args.threads, workers=args.workers,
        amp=args.amp, seed=args.seed,
        max_train_items=args.max_items, max_val_items=args.max_items,
        train_sequences=args.train_sequences, val_sequences=args.val_sequences,
        all_frames=args.all_frames, ema_decay=args.ema, init=args.init,
        teachers=tuple(args.teacher), **given(distill_weight=args.distill_weight,
                                              distill_temperature=args.distill_temperature,
                                              lovasz_weight=args.lovasz_weight),
        augment=AugmentConfig(crop_height=crop_h, crop_width=crop_w, scale_min=scale_min,
                              scale_max=scale_max))
    trainer = Trainer(config, resume=args.resume, progress=not args.no_progress)
    print(f'train: {config.arch}/{config.backbone} on {len(trainer.train_set)} train + '
          f'{len(trainer.val_set)} val images, {trainer.device}, epoch {trainer.epoch} -> '
          f'{config.epochs}, out {config.out}', flush=True)
    final = trainer.fit()
    weights = os.path.join(config.out, trainer.weights_name)
    if config.all_frames:
        print(f'train: done, epoch {trainer.epoch}, val mIoU (seen in training) '
              f'{final.get("val_miou", float("nan")):.2f}; final weights {weights}')
    else:
        print(f'train: done, epoch {trainer.epoch}, best val mIoU {trainer.best_miou:.2f}, '
              f'last {final.get("val_miou", float("nan")):.2f}; best weights {weights}')
    return 0
