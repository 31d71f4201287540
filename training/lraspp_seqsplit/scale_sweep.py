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
Score the disjoint run's last.pt on 0006R0 with larger inputs: the thin-class lever of issue 13.

The frames are upscaled to each input size, the class bias of the bundle (alpha 0.75) added,
and the argmax resized back (NEAREST) to 360x480, the deployed geometry; the raw argmax is scored
(no drivable clean-up), as in bias_sweep.py. Run from the
repository root: ``.venv/bin/python training/lraspp_seqsplit/scale_sweep.py
../shared/data/camvid``; the output is in scale_sweep.txt.
"""

import sys

import cv2
import numpy as np
import torch

from bias_sweep import load_disjoint_run, ROAD
from seg_perception.core.metrics import BinaryStats, ConfusionMatrix
from seg_perception.models.train import to_tensor

SIZES = ((360, 480), (432, 576), (480, 640))


def main(data: str) -> None:
    """Score every input size on the 101 frames of 0006R0."""
    table, weights, val, model = load_disjoint_run(data)
    offsets = torch.from_numpy((-0.75 * np.log(weights)).astype(np.float32)[:, None, None])
    for h, w in SIZES:
        matrix, drivable = ConfusionMatrix(table.num_classes), BinaryStats()
        with torch.inference_mode():
            for sample in val:
                frame = cv2.resize(sample.image, (w, h), interpolation=cv2.INTER_LINEAR)
                logits = model(to_tensor(frame[None], torch.device('cpu')))[0]
                pred = (logits + offsets).argmax(0).numpy().astype(np.uint8)
                pred = cv2.resize(pred, (480, 360), interpolation=cv2.INTER_NEAREST)
                matrix.update(sample.labels, pred)
                drivable.update(sample.labels == ROAD, pred == ROAD, sample.labels != 255)
        iou = matrix.iou()
        print(f'{h}x{w} mIoU {100 * np.nanmean(iou):5.1f} road {100 * iou[ROAD]:5.1f} '
              f'drivable P {100 * drivable.precision():5.1f} R {100 * drivable.recall():5.1f} | '
              + ' '.join(f'{n} {100 * v:4.1f}' for n, v in zip(table.class_names, iou)),
              flush=True)


if __name__ == '__main__':
    main(sys.argv[1])
