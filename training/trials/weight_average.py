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
Would averaging the weights of two finished runs (a "model soup") gain like their ensemble?

The two disjoint LRASPP runs (plain and EMA, same seed and recipe) ensemble to 43.6 mIoU on
0006R0 against 42.6 / 41.9 alone; averaging weights would cost nothing at run time. Scored raw
(argmax, no bias) on 0006R0 as averaged and after re-estimating the BatchNorm statistics on
the 367 training frames. Run from the repository root: ``.venv/bin/python
training/trials/weight_average.py``; the output is in weight_average.txt.
"""

import cv2
import numpy as np
import torch

from seg_perception.core.spec import load_class_table
from seg_perception.models.data import load_pairs, sequence_split
from seg_perception.models.train import evaluate, to_tensor
from seg_perception.models.zoo import create_model

RUNS = ('training/lraspp_seqsplit/last.pt', 'training/lraspp_ema_seqsplit/last.pt')
CPU = torch.device('cpu')


def score(model: torch.nn.Module, frames: list) -> str:
    """Return mIoU and road IoU of ``model`` on ``frames`` at 360x480."""
    matrix = evaluate(model, frames, 11, 360, 480, CPU)
    return f'mIoU {100 * matrix.miou():.2f}, road IoU {100 * matrix.iou()[3]:.2f}'


def reestimate_batchnorm(model: torch.nn.Module, frames: list) -> None:
    """Recompute every BatchNorm's running statistics as a plain mean over ``frames``."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for start in range(0, len(frames), 8):
            images = np.stack([cv2.resize(s.image, (480, 360)) for s in frames[start:start + 8]])
            model(to_tensor(images, CPU))


def main() -> None:
    torch.set_num_threads(2)
    table = load_class_table('camvid')
    train_pairs, val_pairs = sequence_split('../shared/data/camvid', ['0001TP', '0016E5'],
                                            ['0006R0'])
    train, val = load_pairs(train_pairs, table), load_pairs(val_pairs, table)
    first, second = (torch.load(path, weights_only=True)['model'] for path in RUNS)
    alone = create_model('lraspp', num_classes=11, weights=RUNS[0])
    print(f'{RUNS[0]}: {score(alone, val)}', flush=True)
    averaged = create_model('lraspp', num_classes=11)
    averaged.load_state_dict({k: (v.float() + second[k].float()) / 2 if v.is_floating_point()
                              else v for k, v in first.items()})
    print(f'average with {RUNS[1]}: {score(averaged, val)}', flush=True)
    reestimate_batchnorm(averaged, train)
    print(f'the same, BatchNorm re-estimated: {score(averaged, val)}')


if __name__ == '__main__':
    main()
