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
What CGNet (Wu et al. 2018, M=3, N=21) would cost here, against the bundle's LRASPP.

CGNet is the from-scratch CamVid result issue 13 quotes (65.6 mIoU on the test split, trained
800 epochs on train + val without pretrained weights) and no library ships it, so it is written
here from the paper, small, only to measure: parameters, one training step (batch 8, 288x384
crops, the train command's shape) in torch eager, and ONNX Runtime fp32 inference at 360x480,
both interleaved with LRASPP in the same run so that the ratios hold on a busy host. Not in the
zoo: it misses the frame budget (see the model card). Run from the repository root:
``.venv/bin/python training/trials/cgnet_cost.py``; the output is in cgnet_cost.txt.
"""

import os
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
import torch.nn.functional as F

from seg_perception.models.zoo import create_model


def conv_bn_prelu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution, batch norm and PReLU: CGNet's basic unit."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, eps=1e-3), nn.PReLU(c_out))


def bn_prelu(channels: int) -> nn.Sequential:
    """Batch norm and PReLU after a concatenation."""
    return nn.Sequential(nn.BatchNorm2d(channels, eps=1e-3), nn.PReLU(channels))


class ContextGuided(nn.Module):
    """Local (3x3) and surrounding (dilated 3x3) channel-wise features, gated by global context."""

    def __init__(self, c_in: int, c_out: int, dilation: int, reduction: int,
                 down: bool) -> None:
        super().__init__()
        inner = c_out if down else c_out // 2
        self.down = down
        self.project = conv_bn_prelu(c_in, inner, 3 if down else 1, 2 if down else 1)
        self.local = nn.Conv2d(inner, inner, 3, 1, 1, groups=inner, bias=False)
        self.surround = nn.Conv2d(inner, inner, 3, 1, dilation, dilation, groups=inner,
                                  bias=False)
        self.joint = bn_prelu(2 * inner)
        self.reduce = nn.Conv2d(2 * inner, c_out, 1, bias=False) if down else nn.Identity()
        self.gate = nn.Sequential(nn.Linear(c_out, c_out // reduction), nn.ReLU(),
                                  nn.Linear(c_out // reduction, c_out), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(x)
        y = self.reduce(self.joint(torch.cat([self.local(y), self.surround(y)], 1)))
        y = y * self.gate(y.mean((2, 3)))[:, :, None, None]
        return y if self.down else x + y


class CGNet(nn.Module):
    """CGNet-M3N21: a 1/2 stem, 3 blocks at 1/4, 21 blocks at 1/8, input injection."""

    def __init__(self, num_classes: int = 11, blocks_2: int = 3, blocks_3: int = 21) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn_prelu(3, 32, 3, 2), conv_bn_prelu(32, 32, 3),
                                  conv_bn_prelu(32, 32, 3))
        self.join_1 = bn_prelu(32 + 3)
        self.down_2 = ContextGuided(32 + 3, 64, 2, 8, down=True)
        self.stage_2 = nn.Sequential(*[ContextGuided(64, 64, 2, 8, down=False)
                                       for _ in range(blocks_2 - 1)])
        self.join_2 = bn_prelu(128 + 3)
        self.down_3 = ContextGuided(128 + 3, 128, 4, 16, down=True)
        self.stage_3 = nn.Sequential(*[ContextGuided(128, 128, 4, 16, down=False)
                                       for _ in range(blocks_3 - 1)])
        self.join_3 = bn_prelu(256)
        self.classifier = nn.Conv2d(256, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = F.avg_pool2d(x, 3, 2, 1)
        quarter = F.avg_pool2d(half, 3, 2, 1)
        level_1 = self.join_1(torch.cat([self.stem(x), half], 1))
        first_2 = self.down_2(level_1)
        level_2 = self.join_2(torch.cat([self.stage_2(first_2), first_2, quarter], 1))
        first_3 = self.down_3(level_2)
        level_3 = self.join_3(torch.cat([first_3, self.stage_3(first_3)], 1))
        return F.interpolate(self.classifier(level_3), x.shape[2:], mode='bilinear',
                             align_corners=False)


def median_ms(run, repeats: int) -> float:
    """Median wall time of ``run()`` in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def main() -> None:
    """Print parameters, training-step and ONNX Runtime medians and their ratios."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    models = {'cgnet-m3n21': CGNet(), 'lraspp': create_model('lraspp')}
    images = torch.randn(8, 3, 288, 384)
    labels = torch.randint(0, 11, (8, 288, 384))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    frame = np.random.default_rng(0).standard_normal((1, 3, 360, 480)).astype(np.float32)
    train, infer = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        sessions = {}
        for name, model in models.items():
            path = os.path.join(folder, f'{name}.onnx')
            torch.onnx.export(model.eval(), torch.from_numpy(frame), path, opset_version=17,
                              dynamo=False)
            sessions[name] = ort.InferenceSession(path, options,
                                                  providers=['CPUExecutionProvider'])
        for name, model in models.items():
            model.train()
            optimizer = torch.optim.AdamW(model.parameters())

            def step(model=model, optimizer=optimizer) -> None:
                loss = F.cross_entropy(model(images), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            step()  # warm-up
            train[name] = median_ms(step, 5)
            session = sessions[name]
            feed = {session.get_inputs()[0].name: frame}
            session.run(None, feed)
            infer[name] = median_ms(lambda session=session, feed=feed: session.run(None, feed),
                                    30)
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f'{name:12s} {params:4.2f} M parameters, training step {train[name] / 1000:5.2f} s '
              f'(batch 8, 288x384, 1 thread), ORT fp32 {infer[name]:6.1f} ms (360x480, 2 threads)')
    print(f'cgnet / lraspp: training step {train["cgnet-m3n21"] / train["lraspp"]:.2f}x, '
          f'inference {infer["cgnet-m3n21"] / infer["lraspp"]:.2f}x')


if __name__ == '__main__':
    main()
