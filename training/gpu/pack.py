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
Pack what a GPU session needs into .gpu/ (ignored by git; name it in the device tool's carry).

The device machine has torch, torchvision, timm and OpenCV but not segmentation-models-pytorch,
and a working tree travels only up to 64 MiB: CamVid train+val (119 MB of PNG) goes as JPEG
quality 95 (about 25 MB) with the label PNGs unchanged. Run from the repository root:
``.venv/bin/python training/gpu/pack.py ../shared/data/camvid``.
"""

import os
import shutil
import subprocess
import sys

import cv2

OUT = '.gpu'
JPEG_QUALITY = 95
SMP_PIN = 'segmentation-models-pytorch==0.6.0'


def main(data: str) -> None:
    """Write .gpu/camvid/{train,trainannot,val,valannot} and .gpu/wheels/."""
    for split in ('train', 'val'):
        images = os.path.join(OUT, 'camvid', split)
        labels = os.path.join(OUT, 'camvid', f'{split}annot')
        os.makedirs(images, exist_ok=True)
        os.makedirs(labels, exist_ok=True)
        for name in sorted(os.listdir(os.path.join(data, split))):
            stem = os.path.splitext(name)[0]
            bgr = cv2.imread(os.path.join(data, split, name), cv2.IMREAD_COLOR)
            cv2.imwrite(os.path.join(images, stem + '.jpg'), bgr,
                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            shutil.copy(os.path.join(data, f'{split}annot', name),
                        os.path.join(labels, stem + '.png'))
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d',
                    os.path.join(OUT, 'wheels'), SMP_PIN], check=True)
    total = sum(os.path.getsize(os.path.join(folder, f))
                for folder, _, files in os.walk(OUT) for f in files)
    print(f'{OUT}: {total / 2**20:.1f} MiB')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '../shared/data/camvid')
