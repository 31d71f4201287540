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
Write the class-bias file (``export --class-bias``) that takes back part of a run's weighting.

Training weights class c by w_c (median-frequency balancing, damped by the run's power), which
pushes the model towards the rare classes; the offsets ``-alpha * ln(w_c)`` added to the logits
before the argmax undo a share ``alpha`` of that push (post-hoc logit adjustment). The weights
are computed from the same frames and with the same function as the run's. Choose ``alpha`` on a
sequence the model did not train on (``training/lraspp_seqsplit/bias_sweep.py``). Run from the
repository root, e.g. ``.venv/bin/python training/class_bias.py --data ../shared/data/camvid
--all-frames --alpha 0.75 --out training/lraspp_final/class_bias.yaml``.
"""

import argparse
import math
import sys

from seg_perception.core.atomic import write_text
from seg_perception.core.spec import load_class_table
from seg_perception.models.data import class_weights
from seg_perception.models.train import load_training_data, TrainConfig


def main() -> int:
    """Compute the run's class weights and write the offsets as YAML."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--data', required=True, help='the SegNet-layout data folder')
    parser.add_argument('--classes', default=TrainConfig.classes)
    parser.add_argument('--train-sequences', default='', help='as given to train (A,B)')
    parser.add_argument('--val-sequences', default='', help='as given to train (C)')
    parser.add_argument('--all-frames', action='store_true', help='as given to train')
    parser.add_argument('--power', type=float, default=TrainConfig.class_weight_power,
                        help="the run's class-weight power (default %(default)s)")
    parser.add_argument('--alpha', type=float, required=True,
                        help='share of the weighting taken back (0 = none, 1 = all)')
    parser.add_argument('--out', required=True, help='class-bias YAML to write')
    args = parser.parse_args()
    table = load_class_table(args.classes)
    config = TrainConfig(data=args.data, classes=args.classes, all_frames=args.all_frames,
                         train_sequences=tuple(filter(None, args.train_sequences.split(','))),
                         val_sequences=tuple(filter(None, args.val_sequences.split(','))))
    train, _ = load_training_data(config, table)
    weights = class_weights(train, table.num_classes, ignore_index=table.ignore_index,
                            power=args.power)
    names = {info.id: info.name for info in table.classes}
    lines = [f'# export --class-bias: -{args.alpha} * ln(class weight), weights of power '
             f'{args.power} over {len(train)} training frames of {args.data}'
             + (' (all frames)' if args.all_frames else
                f' (sequences {args.train_sequences})' if args.train_sequences else '')]
    for index, weight in enumerate(weights):
        if index in names and weight > 0:
            lines.append(f'{names[index]}: {-args.alpha * math.log(weight):.4f}')
    write_text(args.out, '\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
