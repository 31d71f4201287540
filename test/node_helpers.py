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

"""Helpers of the node tests: camera frames in every sensor_msgs encoding, raw message building."""

import itertools
import threading
import time
from typing import Any, Dict, List, Optional

import cv2
import numpy as np
from sensor_msgs.msg import Image

SEQUENCES = itertools.count()  # frame sequences of Trigger, unique across a test run
# Every encoding issue 4 asks for, with the camera-side conversion from RGB.
BAYER_OFFSETS = {  # (row, col) of R and B in the 2x2 tile
    'bayer_rggb8': ((0, 0), (1, 1)), 'bayer_bggr8': ((1, 1), (0, 0)),
    'bayer_gbrg8': ((1, 0), (0, 1)), 'bayer_grbg8': ((0, 1), (1, 0)),
}
YUV_CODES = {'yuv422': cv2.COLOR_RGB2YUV_UYVY, 'uyvy': cv2.COLOR_RGB2YUV_UYVY,
             'yuyv': cv2.COLOR_RGB2YUV_YUYV}
ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', 'yuv422', 'uyvy', 'yuyv',
             *BAYER_OFFSETS)


def mosaic(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Return the single-channel Bayer mosaic a camera with this pattern would capture."""
    (r_row, r_col), (b_row, b_col) = BAYER_OFFSETS[encoding]
    out = rgb[:, :, 1].copy()
    out[r_row::2, r_col::2] = rgb[r_row::2, r_col::2, 0]
    out[b_row::2, b_col::2] = rgb[b_row::2, b_col::2, 2]
    return out


def encode_as(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Return an RGB frame converted to the array layout of a sensor_msgs encoding."""
    if encoding == 'rgb8':
        return rgb
    if encoding == 'bgr8':
        return np.ascontiguousarray(rgb[:, :, ::-1])
    if encoding in ('rgba8', 'bgra8'):
        code = cv2.COLOR_RGB2RGBA if encoding == 'rgba8' else cv2.COLOR_RGB2BGRA
        return cv2.cvtColor(rgb, code)
    if encoding == 'mono8':
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if encoding == 'mono16':
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    if encoding in YUV_CODES:
        return cv2.cvtColor(rgb, YUV_CODES[encoding])
    if encoding in BAYER_OFFSETS:
        return mosaic(rgb, encoding)
    raise ValueError(f'no test conversion for {encoding}')


def raw_message(array: np.ndarray, encoding: str, frame_id: str, padding: int = 0,
                big_endian: bool = False, stamp_ns: Optional[int] = None) -> Image:
    """Return an Image with ``padding`` bytes after each row and optionally big-endian data."""
    height, width = array.shape[:2]
    data = array.astype('>u2' if big_endian else '<u2') if array.dtype == np.uint16 else array
    rows = np.ascontiguousarray(data).view(np.uint8).reshape(height, -1)
    if padding:
        rows = np.hstack([rows, np.full((height, padding), 0xAB, np.uint8)])
    msg = Image(height=height, width=width, encoding=encoding,
                is_bigendian=int(big_endian), step=rows.shape[1])
    msg.header.frame_id = frame_id
    value = time.time_ns() if stamp_ns is None else stamp_ns
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(value, 1_000_000_000)
    msg.data = rows.tobytes()
    return msg


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Return the fraction of equal pixels of two label maps of the same shape."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.mean(a == b))


class Trigger:
    """
    Publish one frame per camera on a common clock in a thread; cameras can be muted.

    Every frame's frame_id is ``<camera>_<sequence>`` (sequences unique within the test run), so
    an output tells which frame it was made from; ``sent[camera][sequence]`` is (stamp, index).
    """

    def __init__(self, peers: Dict[str, Any], frames: Dict[str, list], rate_hz: float) -> None:
        """Prepare one message per camera and frame (compressed peers: PNG); call start()."""
        self.peers = peers
        self.period = 1.0 / rate_hz
        self.messages = {name: [peer.make_message(frame, 'rgb8', fmt='png')
                                for frame in frames[name]] for name, peer in peers.items()}
        self.sent: Dict[str, Dict[int, tuple]] = {name: {} for name in peers}  # seq -> stamp, i
        self.muted: set = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start publishing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and wait for the thread."""
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        next_time = time.monotonic()
        while not self._stop.is_set():
            sequence = next(SEQUENCES)
            stamp = time.time_ns()
            for name, peer in self.peers.items():
                if name in self.muted:
                    continue
                index = sequence % len(self.messages[name])
                msg = self.messages[name][index]
                msg.header.frame_id = f'{name}_{sequence}'
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
                peer.publish(msg)
                self.sent[name][sequence] = (stamp, index)
            next_time += self.period
            time.sleep(max(0.0, next_time - time.monotonic()))

    def sent_between(self, name: str, begin_ns: int, end_ns: int) -> List[int]:
        """Return the sequences of a camera sent with a stamp in [begin, end)."""
        return [seq for seq, (stamp, _) in list(self.sent[name].items())
                if begin_ns <= stamp < end_ns]
