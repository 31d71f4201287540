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
What an undilated MobileNetV3 would save in the bundle's LRASPP: a candidate for speed margin.

torchvision's LRASPP dilates MobileNetV3's last stage so it stays at 1/16 of the input; its
960-channel 1x1 convolutions there take a third of the bundle's time on an AVX2-only CPU
(ONNX Runtime profile, 2026-12-07). The same head on the undilated backbone (last stage at
1/32) is timed against it, random weights, interleaved: ONNX Runtime fp32 at 360x480 (logits,
no fused head) and a training step (batch 8, 288x384). What it costs in accuracy needs a
training run. Run from the repository root: ``.venv/bin/python
training/trials/lraspp_undilated_cost.py``; the output is in lraspp_undilated_cost.txt.
"""

import os
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torchvision.models import mobilenet_v3_large
from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3


def wall_times_ms(run: Callable[[], object], repeats: int) -> List[float]:
    """Return the wall time of each of ``repeats`` calls, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - start))
    return times


class Logits(torch.nn.Module):
    """Return the ``out`` logits of a torchvision segmentation model."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)['out']


def main() -> None:
    """Print the median inference and training-step times of both backbones and their ratio."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    models = {name: Logits(_lraspp_mobilenetv3(mobilenet_v3_large(weights=None, dilated=dilated),
                                               11))
              for name, dilated in (('dilated (the bundle)', True), ('undilated', False))}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')  # as the backend
    frame = np.random.default_rng(0).standard_normal((1, 3, 360, 480)).astype(np.float32)
    images, labels = torch.randn(8, 3, 288, 384), torch.randint(0, 11, (8, 288, 384))
    infer: Dict[str, List[float]] = {name: [] for name in models}
    train: Dict[str, List[float]] = {name: [] for name in models}
    with tempfile.TemporaryDirectory() as folder:
        sessions = {}
        for index, (name, model) in enumerate(models.items()):
            path = os.path.join(folder, f'{index}.onnx')
            torch.onnx.export(model.eval(), torch.from_numpy(frame), path, opset_version=17,
                              dynamo=False, input_names=['x'])
            sessions[name] = ort.InferenceSession(path, options,
                                                  providers=['CPUExecutionProvider'])
        optimizers = {name: torch.optim.AdamW(model.parameters())
                      for name, model in models.items()}
        for round_index in range(10):
            for name, model in models.items():
                infer[name] += wall_times_ms(
                    lambda name=name: sessions[name].run(None, {'x': frame}), 5)
                if round_index >= 7:
                    continue
                model.train()

                def step(model=model, optimizer=optimizers[name]) -> None:
                    loss = F.cross_entropy(model(images), labels)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

                times = wall_times_ms(step, 1)
                if round_index:  # the first step warms up
                    train[name] += times
    for name in models:
        print(f'{name:20s} ORT fp32 {np.median(infer[name]):5.1f} ms (360x480, 2 threads), '
              f'training step {np.median(train[name]) / 1000:4.2f} s (batch 8, 288x384)')
    first, second = list(models)
    print(f'undilated / dilated: inference '
          f'{np.median(infer[second]) / np.median(infer[first]):.2f}x, training step '
          f'{np.median(train[second]) / np.median(train[first]):.2f}x')


if __name__ == '__main__':
    main()
