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
Write a finished run's last epoch as small fp16 weights (last.pt) before resume.pt is dropped.

best.pt is the epoch picked on the validation frames, so it flatters the run; the end of the
schedule is what an all-frames run ships, and a trial on the disjoint split is judged on it.
Run from the repository root, e.g. ``.venv/bin/python training/last_epoch.py
training/lraspp_ema_seqsplit/resume.pt training/lraspp_ema_seqsplit/last.pt`` (``--trained``
takes the trained weights of an EMA run instead of the average).
"""

import argparse
import sys

from seg_perception.core.errors import DataError
from seg_perception.models.train import atomic_torch_save, last_epoch_checkpoint


def main() -> int:
    """Read resume.pt, write the deployable weights of its last epoch."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('resume', help="the run's resume.pt")
    parser.add_argument('out', help='the weights file to write (export --weights reads it)')
    parser.add_argument('--trained', action='store_true',
                        help='the trained weights of an EMA run instead of the average')
    args = parser.parse_args()
    try:
        checkpoint = last_epoch_checkpoint(args.resume, trained=args.trained)
    except DataError as error:
        print(f'last_epoch: {error}', file=sys.stderr)
        return 1
    atomic_torch_save(checkpoint, args.out)
    print(f"{args.out}: epoch {checkpoint['epoch']}, val mIoU {checkpoint['miou']:.2f}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
