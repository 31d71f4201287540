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
Choose the class-bias share ``alpha`` on 0006R0, the sequence this run never trained on.

The run's weights (median frequency ** 0.5 over 0001TP + 0016E5) made the model over-predict
the rare classes on 0006R0 (pole, fence, pedestrian recall 53-64 % at IoU 19-24). This scores
``last.pt`` with ``-alpha * ln(w_c)`` added to the logits for a sweep of alpha; the raw argmax
mask is scored here (no drivable clean-up), ``seg-perception evaluate`` of the exported model
gives the product numbers. Run from the repository root:
``.venv/bin/python training/lraspp_seqsplit/bias_sweep.py ../shared/data/camvid [WEIGHTS]``;
WEIGHTS (default this run's last.pt) scores another run on the same split, e.g. the EMA trial.
"""

import sys
from typing import List, Tuple

import cv2
import numpy as np
import torch

from seg_perception.core.metrics import BinaryStats, ConfusionMatrix
from seg_perception.core.spec import ClassTable, load_class_table
from seg_perception.models.data import class_weights, load_pairs, Sample, sequence_split
from seg_perception.models.train import to_tensor
from seg_perception.models.zoo import create_model

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
ROAD = 3


LAST = 'training/lraspp_seqsplit/last.pt'


def load_disjoint_run(data: str, weights_path: str = LAST
                      ) -> Tuple[ClassTable, np.ndarray, List[Sample], torch.nn.Module]:
    """Return the class table, the split's class weights, the 0006R0 samples and the model."""
    torch.set_num_threads(1)
    table = load_class_table('camvid')
    train_pairs, val_pairs = sequence_split(data, ['0001TP', '0016E5'], ['0006R0'])
    weights = class_weights(load_pairs(train_pairs, table), table.num_classes, power=0.5)
    val = load_pairs(val_pairs, table)
    model = create_model('lraspp', num_classes=table.num_classes,
                         weights=weights_path).float().eval()
    return table, weights, val, model


def main(data: str, weights_path: str = LAST) -> None:
    """Cache the log-probabilities once, then score every alpha."""
    table, weights, val, model = load_disjoint_run(data, weights_path)
    log_probs = []
    with torch.inference_mode():
        for sample in val:
            frame = cv2.resize(sample.image, (480, 360), interpolation=cv2.INTER_LINEAR)
            logits = model(to_tensor(frame[None], torch.device('cpu')))[0]
            log_probs.append(torch.log_softmax(logits, 0).numpy())
    names = table.class_names
    for alpha in ALPHAS:
        offsets = (-alpha * np.log(weights)).astype(np.float32)[:, None, None]
        matrix, drivable = ConfusionMatrix(table.num_classes), BinaryStats()
        for sample, log_prob in zip(val, log_probs):
            pred = (log_prob + offsets).argmax(0).astype(np.uint8)
            matrix.update(sample.labels, pred)
            drivable.update(sample.labels == ROAD, pred == ROAD, sample.labels != 255)
        iou = matrix.iou()
        print(f'alpha {alpha:4.2f} mIoU {100 * np.nanmean(iou):5.1f} road {100 * iou[ROAD]:5.1f} '
              f'drivable P {100 * drivable.precision():5.1f} R {100 * drivable.recall():5.1f} | '
              + ' '.join(f'{n} {100 * v:4.1f}' for n, v in zip(names, iou)), flush=True)


if __name__ == '__main__':
    if len(sys.argv) not in (2, 3):
        sys.exit(f'usage: {sys.argv[0]} CAMVID_DIR [WEIGHTS]')
    main(*sys.argv[1:])
