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
The dilated disjoint run's epoch-300 weights run undilated, before any fine-tuning step.

Scored raw (argmax) on 0006R0 at 360x480 next to the same weights dilated. Run from the
repository root: ``.venv/bin/python training/lraspp_undilated_seqsplit/zero_shot.py``. Output
on 2026-12-07: dilated mIoU 42.56, road IoU 93.60; undilated mIoU 41.13, road IoU 91.35.
"""

import torch

from seg_perception.core.spec import load_class_table
from seg_perception.models.data import load_pairs, sequence_split
from seg_perception.models.train import evaluate
from seg_perception.models.zoo import create_model, load_checkpoint

WEIGHTS = 'training/lraspp_seqsplit/last.pt'

torch.set_num_threads(2)
_, val_pairs = sequence_split('../shared/data/camvid', ['0001TP', '0016E5'], ['0006R0'])
frames = load_pairs(val_pairs, load_class_table('camvid'))
for backbone in ('mobilenet_v3_large', 'mobilenet_v3_large_undilated'):
    model = create_model('lraspp', backbone, num_classes=11)
    load_checkpoint(model, WEIGHTS, other_backbone=True)
    matrix = evaluate(model, frames, 11, 360, 480, torch.device('cpu'))
    print(f'{backbone}: mIoU {100 * matrix.miou():.2f}, road IoU {100 * matrix.iou()[3]:.2f}')
