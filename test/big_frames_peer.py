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
Frames up to 8192 a side to a best-effort node, with the 8K DDS profile (run by a test).

``python big_frames_peer.py MODEL LOG_DIR`` with FASTDDS_DEFAULT_PROFILES_FILE set to
config/fastdds_shm_8k.xml: Fast DDS reads the profile once per process, so this runs in a
process of its own. Frames go one at a time (the next after the labels of the previous), a few
per size, for memory. 8192x8192 rgb8 (201 MB) arrives too and is refused as too_large
(counted), not lost. Exits 1 with the reason on a failure.
"""

import os
import sys
import time

import numpy as np
from sensor_msgs.msg import Image

from seg_perception.ros.harness.peer import NodeProcess, Peer

NODE_PARAMETERS = {'num_threads': 1, 'diagnostics_period': 0.5, 'error_log_period': 600.0}
START_TIMEOUT = 90.0
FRAME_TIMEOUT = 20.0
BIG_FRAME_TIMEOUT = 10.0
SIZES = ((3840, 2160, 4), (7680, 4320, 3), (8192, 8192, 2))
MAX_PIXELS = 40_000_000


def big_frame(width: int, height: int, frame_id: str) -> Image:
    """Return an rgb8 Image of random pixels (by hand: 8192x8192 is over the core's limit)."""
    msg = Image(width=width, height=height, encoding='rgb8', step=width * 3)
    msg.header.frame_id = frame_id
    msg.data = np.random.default_rng(width).integers(0, 256, width * height * 3,
                                                     np.uint8).tobytes()
    return msg


def main(model: str, log_dir: str) -> int:
    """Start the node and a peer, send the frames, check what the node received."""
    from node_helpers import raw_message
    node = NodeProcess(dict(NODE_PARAMETERS, model_path=model), name='segmentation_big',
                       log_dir=log_dir)
    peer = Peer(node.fqn, outputs=('labels',))
    failures = []
    try:
        probe = raw_message(np.zeros((48, 64, 3), np.uint8), 'rgb8', 'probe')
        if not peer.wait_ready(probe, START_TIMEOUT, alive=node.running):
            print(f'node did not start:\n{node.log()}')
            return 1
        for width, height, count in SIZES:
            msg = big_frame(width, height, f'big_{width}x{height}')
            before = peer.fresh_diagnostics(FRAME_TIMEOUT)
            answered, latencies = 0, []
            for _ in range(count):
                stamp = peer.publish(msg, restamp=True)
                out = peer.wait_for_stamp(stamp, BIG_FRAME_TIMEOUT)
                if out is not None:
                    answered += 1
                    if (out.width, out.height) != (width, height):
                        failures.append(f'{width}x{height}: labels {out.width}x{out.height}')
                    latencies.append((time.time_ns() - stamp) / 1e6)
            too_large = width * height > MAX_PIXELS
            expected = {'frames_received': count,
                        'rejected.too_large': count if too_large else 0}

            def counted(values):
                return all(int(values.get(key, 0)) - int(before.get(key, 0)) >= value
                           for key, value in expected.items())
            values = peer.wait_for_diagnostics(counted, FRAME_TIMEOUT)
            print(f'{width}x{height} rgb8: {count} sent, labels back {answered}, stamp -> '
                  f'labels ms {[round(x) for x in latencies]}', flush=True)
            if not values:
                failures.append(f'{width}x{height}: not all counted: '
                                f'{peer.latest_diagnostics()}')
            if answered != (0 if too_large else count):
                failures.append(f'{width}x{height}: {answered} of {count} answered')
            del msg
            peer.clear()
    finally:
        peer.close()
        code = node.stop()
    if code != 0:
        failures.append(f'node exit code {code}')
    if failures:
        print('\n'.join(failures) + '\n' + node.log()[-2000:])
        return 1
    return 0


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main(sys.argv[1], sys.argv[2]))
