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
Score an ensemble of the finished disjoint-split runs on 0006R0: the ceiling of distillation.

Distilling a stronger teacher into the bundle's LRASPP is one of issue 13's levers; no teacher
better than the runs already trained on 0001TP + 0016E5 can be trained on this CPU, so this
averages their softmax outputs and scores the mean on 0006R0 (raw argmax, no class bias, no
drivable clean-up, as bias_sweep.py). A distilled student gets at most near the ensemble.
Run from the repository root: ``.venv/bin/python training/lraspp_seqsplit/ensemble_check.py
../shared/data/camvid``; the output is in ensemble_check.txt.
"""

import sys
from typing import Dict, List

import cv2
import numpy as np
import torch

from bias_sweep import load_disjoint_run, ROAD
from seg_perception.core.metrics import ConfusionMatrix
from seg_perception.models.train import to_tensor
from seg_perception.models.zoo import create_model

# name: (arch, weights); every run trained on 0001TP + 0016E5 only
RUNS = {
    'lraspp (epoch 300)': ('lraspp', 'training/lraspp_seqsplit/last.pt'),
    'lraspp EMA (epoch 300)': ('lraspp', 'training/lraspp_ema_seqsplit/last.pt'),
    'pspnet-resnet18 (best, epoch 238)': ('pspnet', 'training/pspnet_seqsplit/best.pt'),
}


def main(data: str) -> None:
    """Score each run alone, then the mean of the first two and of all three."""
    table, _, val, _ = load_disjoint_run(data)
    probs: Dict[str, List[np.ndarray]] = {}
    for name, (arch, weights) in RUNS.items():
        model = create_model(arch, num_classes=table.num_classes, weights=weights).float().eval()
        with torch.inference_mode():
            probs[name] = [
                torch.softmax(model(to_tensor(cv2.resize(s.image, (480, 360))[None],
                                              torch.device('cpu')))[0], 0).numpy()
                for s in val]
    names = list(RUNS)
    rows = [(name, probs[name]) for name in names]
    rows.append(('mean of the two lraspp', [a + b for a, b in zip(probs[names[0]],
                                                                  probs[names[1]])]))
    rows.append(('mean of all three', [sum(p) for p in zip(*probs.values())]))
    for name, scores in rows:
        matrix = ConfusionMatrix(table.num_classes)
        for sample, score in zip(val, scores):
            matrix.update(sample.labels, score.argmax(0).astype(np.uint8))
        iou = matrix.iou()
        print(f'{name:34s} mIoU {100 * np.nanmean(iou):5.1f} road {100 * iou[ROAD]:5.1f} | '
              + ' '.join(f'{n} {100 * v:4.1f}' for n, v in zip(table.class_names, iou)),
              flush=True)


if __name__ == '__main__':
    main(sys.argv[1])
