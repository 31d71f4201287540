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
``seg-perception infer``: run the core Segmenter over every frame of a bag or image folder.

Deterministic and offline: no DDS, no dropped frames. Writes label PNGs (lossless class ids, 255 =
unlabeled), drivable masks and overlays into ``--out``, and/or an output bag (``--out-bag``)
with the node's topics (``/segmentation/labels``, ``drivable_mask``, ``overlay``) carrying the
input headers plus a copy of the input images, so a drive can be re-watched in Foxglove or RViz.
A corrupt or truncated input bag stops the run after writing every frame read before the
damage; the tool then exits 1 naming where the bag broke. Every file is written atomically
(:mod:`seg_perception.core.atomic`): a frame image is whole or absent, ``frames.csv`` comes
last and only from a run that finished (or stopped at input damage), and ``--out-bag`` appears
only when it was closed cleanly. A folder holding an earlier run is refused unless ``--overwrite``.
"""

import argparse
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
import os
import time
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

import cv2

from seg_perception.core import atomic, colorize
from seg_perception.core.errors import DataError, UsageError
from seg_perception.core.imagecodec import to_rgb
from seg_perception.io import bags as bagio
from seg_perception.io import frames
from seg_perception.io.images import is_image_file
from seg_perception.tools import make_bag, pipeline
from seg_perception.tools.argtypes import positive_int, unit_interval


SAVE_CHOICES = ('labels', 'drivable', 'overlay', 'color', 'confidence')
DEFAULT_SAVE = ('labels', 'drivable', 'overlay')
OUT_BAG_NAMESPACE = '/segmentation'
OVERLAY_JPEG_QUALITY = 90
INDEX_FILE = 'frames.csv'
BAG_QUEUE_FRAMES = 4  # frames queued for the bag thread before the main thread waits
# image topics with these words are label maps, not cameras (for picking the default topic)
NOT_CAMERA_WORDS = ('label', 'mask', 'segmentation', 'overlay', 'confidence')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the infer options."""
    pipeline.add_model_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--bag', metavar='BAG', help='ROS 2 bag (dir, .mcap, .db3) or ROS 1 .bag')
    source.add_argument('--images', metavar='DIR', help='folder of .png/.jpg frames')
    parser.add_argument('--topic', metavar='T',
                        help='image topic of --bag (Image or CompressedImage); default: the '
                             'only camera image topic of the bag')
    parser.add_argument('--out', metavar='OUT', help='output folder for PNG/JPEG files')
    parser.add_argument('--save', nargs='+', choices=SAVE_CHOICES, default=list(DEFAULT_SAVE),
                        help='what to write into --out (default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='--out holds an earlier run: delete its frames.csv and frame '
                             'images first (without it such a folder is refused)')
    parser.add_argument('--out-bag', metavar='OUT_BAG',
                        help='also write a bag (X.mcap, X.db3, X.bag or a folder) with '
                             f'{OUT_BAG_NAMESPACE}/labels, drivable_mask and overlay')
    parser.add_argument('--no-input-copy', action='store_true',
                        help='do not copy the input images into --out-bag')
    parser.add_argument('--alpha', type=unit_interval, metavar='A',
                        help='overlay color weight in [0, 1] (default: the core default)')
    parser.add_argument('--every', type=positive_int, default=1, metavar='N',
                        help='use every N-th frame')
    parser.add_argument('--max', type=positive_int, metavar='N', help='stop after N frames')
    pipeline.add_pool_arguments(parser)


def choose_image_topic(reader: Any, topic: Optional[str], option: str = '--topic') -> str:
    """Return topic, or the bag's only camera topic; several or none raise DataError."""
    if topic:
        return topic
    candidates = reader.topics_of_type(bagio.IMAGE_TYPES)
    cameras = [t for t in candidates if not any(word in t for word in NOT_CAMERA_WORDS)]
    if len(cameras) == 1:
        return cameras[0]
    if len(candidates) == 1:
        return candidates[0]
    if not reader.topics():
        raise DataError(f'{reader.path}: the bag is empty (no topics)')
    which = ('no image topic' if not candidates else
             f'{len(cameras)} camera image topics' if len(cameras) > 1 else
             f'{len(candidates)} image topics')
    raise DataError(f'{reader.path}: {which}; choose one with {option} '
                    f'({reader.describe_topics()})')


def _expected_frames(count: int, every: int, limit: Optional[int]) -> Optional[int]:
    """Return how many frames a topic of count messages gives (None when unknown)."""
    if not count:
        return None
    expected = -(-count // every)
    return min(expected, limit) if limit else expected


def _unique_names(jobs: Iterable[Any]) -> Iterator[Any]:
    """Rename jobs whose name repeats (a looped bag repeats stamps) by appending the index."""
    seen = set()
    for job in jobs:
        if job.name in seen:
            job.name = f'{job.name}_{job.index:06d}'
        seen.add(job.name)
        yield job


class Outputs:
    """Writes one frame's results: image files (write pool) and bag messages (main thread)."""

    def __init__(self, args: argparse.Namespace, spec: Any, reader: Any) -> None:
        self.out = args.out
        self.save = set(args.save) if args.out else set()
        self.alpha = colorize.DEFAULT_ALPHA if args.alpha is None else args.alpha
        self.palette = spec.palette()
        self.reader = reader
        self.copy_input = not args.no_input_copy
        self.bag: Optional[Any] = None
        self.index_lines: List[str] = []
        self.period_ns = int(1e9 / make_bag.DEFAULT_RATE_HZ)
        self.start_ns = int(time.time() * 1e9)
        if self.out:
            for kind in self.save:
                os.makedirs(os.path.join(self.out, kind), exist_ok=True)
        self._pending: Deque[Future] = deque()
        if args.out_bag:
            self.bag = bagio.BagWriter(args.out_bag)
            self._bag_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix='bag')
        self.ros1_bag = self.bag is not None and self.bag.ros1
        self.topics = {kind: f'{OUT_BAG_NAMESPACE}/{kind}'
                       for kind in ('labels', 'drivable_mask', 'overlay')}

    @property
    def wants_confidence(self) -> bool:
        """Return whether the confidence output is requested."""
        return 'confidence' in self.save

    def stamp_of(self, frame: Any) -> Tuple[int, int]:
        """Return (header stamp, log time) of a frame; image folders get 10 Hz stamps."""
        job = frame.job
        if job.stamp is not None:
            return job.stamp, job.log_time if job.log_time is not None else job.stamp
        stamp = self.start_ns + job.index * self.period_ns
        return stamp, stamp

    def write(self, frame: Any, result: Any) -> Dict[str, Any]:
        """Write the files of one frame; return its bag messages and index line (worker)."""
        name = frame.name
        images: Dict[str, Any] = {'labels': result.labels,
                                  'drivable': result.drivable}
        needs_overlay = 'overlay' in self.save or self.bag is not None
        if needs_overlay:
            rgb = to_rgb(frame.image, frame.encoding)
            images['overlay'] = colorize.overlay(rgb, result.labels, self.palette, self.alpha)
        if 'color' in self.save:
            images['color'] = colorize.colorize(result.labels, self.palette)
        if 'confidence' in self.save and getattr(result, 'confidence', None) is not None:
            images['confidence'] = result.confidence
        for kind in self.save:
            if kind not in images:
                continue
            image = images[kind]
            if image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            if kind == 'overlay':
                path = os.path.join(self.out, kind, f'{name}.jpg')
                encoded, data = cv2.imencode('.jpg', image,
                                             [cv2.IMWRITE_JPEG_QUALITY, OVERLAY_JPEG_QUALITY])
            else:
                path = os.path.join(self.out, kind, f'{name}.png')
                encoded, data = cv2.imencode('.png', image)
            if not encoded:
                raise DataError(f'{path}: OpenCV cannot encode this {kind} image')
            # whole or absent, never a cut PNG; no fsync per frame (the index is synced)
            atomic.write_bytes(path, data.tobytes(), sync=False)
        stamp, log_time = self.stamp_of(frame)
        height, width = result.labels.shape
        line = f'{frame.job.index},{name},{stamp},{frame.job.frame_id},{width},{height}'
        return {'messages': self._messages(frame, images, stamp) if self.bag else [],
                'log_time': log_time, 'line': line}

    def _messages(self, frame: Any, images: Dict[str, Any], stamp: int) -> List[Tuple]:
        """Return the serialized bag messages of a frame: (topic, msgtype, bytes) (worker)."""
        store = self.bag.store
        header = bagio.make_header(store, stamp, frame.job.frame_id, seq=frame.job.index)
        built: List[Tuple[str, Any]] = []
        messages: List[Tuple[str, str, bytes]] = []
        source = frame.job.source_message
        if self.copy_input and source is not None and not self.ros1_bag:
            # the input message as recorded (converted to CDR if it came from a ROS 1 bag)
            messages.append((source.topic, source.msgtype, self.reader.to_cdr(source, store)))
        elif self.copy_input:
            # image folders, or a ROS 1 output: the decoded pixels as a raw Image
            topic = bagio.DEFAULT_IMAGE_TOPIC
            if source is not None:
                topic = source.topic if source.msgtype == bagio.IMAGE else \
                    source.topic.rsplit('/compressed', 1)[0]
            built.append((topic, bagio.make_image(store, frame.image, frame.encoding, header)))
        for kind, key in (('labels', 'labels'), ('drivable_mask', 'drivable'),
                          ('overlay', 'overlay')):
            encoding = 'rgb8' if kind == 'overlay' else 'mono8'
            built.append((self.topics[kind], bagio.make_image(store, images[key], encoding,
                                                              header)))
        serialize = store.serialize_ros1 if self.ros1_bag else store.serialize_cdr
        messages += [(topic, message.__msgtype__, serialize(message, message.__msgtype__))
                     for topic, message in built]
        return messages

    def collect(self, written: Dict[str, Any]) -> None:
        """Queue a frame's bag messages, in frame order, for the bag thread (main thread)."""
        self.index_lines.append(written['line'])
        if self.bag is None:
            return
        self._pending.append(self._bag_thread.submit(self._write_bag, written))
        while len(self._pending) > BAG_QUEUE_FRAMES:
            self._pending.popleft().result()  # re-raises a write error here

    def _write_bag(self, written: Dict[str, Any]) -> None:
        for topic, msgtype, raw in written['messages']:
            self.bag.write_raw(topic, msgtype, written['log_time'], raw)

    def close(self) -> None:
        """Finish the bag (renamed into place), then write the frame index: the run is done."""
        if self.bag is not None:
            try:
                while self._pending:
                    self._pending.popleft().result()
            except BaseException:
                self.abort()
                raise
            self._bag_thread.shutdown(wait=True)
            self.bag.close()  # a failure deletes the partial bag and raises
        if self.out:
            atomic.write_text(os.path.join(self.out, INDEX_FILE),
                              'index,name,stamp_ns,frame_id,width,height\n'
                              + ''.join(line + '\n' for line in self.index_lines))

    def abort(self) -> None:
        """After a failure: delete the partial bag and write no index (nothing looks done)."""
        if self.bag is not None:
            for future in self._pending:
                future.cancel()
            self._bag_thread.shutdown(wait=True)
            self.bag.discard()


def check_out_folder(out: str, overwrite: bool) -> None:
    """
    Refuse an --out folder holding an earlier run, or (overwrite) delete that run's files.

    Otherwise the stale frames of a longer earlier run would mix into this run's result. The
    index goes first, so an overwrite that fails half-way never looks like a finished run.
    """
    index = os.path.join(out, INDEX_FILE)
    stale = [os.path.join(out, kind, name) for kind in SAVE_CHOICES
             if os.path.isdir(os.path.join(out, kind))
             for name in sorted(os.listdir(os.path.join(out, kind)))
             if is_image_file(name) and not name.startswith('.')]
    if not stale and not os.path.exists(index):
        return
    if not overwrite:
        raise DataError(f'{out}: holds the outputs of an earlier run ({INDEX_FILE}, '
                        f'{len(stale)} frame images); give --overwrite to replace them, or '
                        'another --out')
    for path in ([index] if os.path.exists(index) else []) + stale:
        os.unlink(path)


def check_options(args: argparse.Namespace) -> None:
    """Reject option combinations that cannot work (UsageError)."""
    if not args.out and not args.out_bag:
        raise UsageError('nothing to write: give --out DIR and/or --out-bag OUT.mcap')
    if args.topic and args.images:
        raise UsageError('--topic picks the image topic of --bag; --images has no topics')


def run(args: argparse.Namespace) -> int:
    """Segment every frame; print one summary line; exit 1 if the input bag was damaged."""
    check_options(args)
    reader = None
    try:
        if args.bag:
            reader = bagio.BagReader(args.bag)
            reader.open()
            topic = choose_image_topic(reader, args.topic)
            reader.require_topic(topic, bagio.IMAGE_TYPES, 'image topic')
            jobs: Iterable[Any] = frames.bag_jobs(reader, topic, args.every, args.max)
            total = _expected_frames(reader.topics()[topic].count, args.every, args.max)
            source = f'{args.bag}:{topic}'
        else:
            job_list, _ = frames.folder_jobs(args.images, every=args.every, limit=args.max)
            jobs, total, source = job_list, len(job_list), args.images
        if args.out_bag and os.path.exists(args.out_bag):
            raise DataError(f'{args.out_bag}: exists already; remove it or choose another '
                            'output')
        if args.out:
            check_out_folder(args.out, args.overwrite)
        segmenter = pipeline.load_segmenter(args)
        if 'confidence' in (args.save if args.out else []) and \
                not segmenter.spec.gives_confidence:
            raise DataError(f'{segmenter.model_path}: --save confidence needs a model with '
                            'logits or labels_confidence output; this one outputs labels only '
                            '(argmax in the graph)')
        outputs = Outputs(args, segmenter.spec, reader)
        timing = pipeline.Timing()
        skips = pipeline.SkipCounter()
        options = {'confidence': True} if outputs.wants_confidence else {}
        try:
            error = pipeline.run_loop(_unique_names(jobs),
                                      pipeline.timed_segment(segmenter, timing, **options),
                                      outputs.write, outputs.collect, skips, timing,
                                      args.workers, total, 'infer')
        except BaseException:
            outputs.abort()
            raise
        outputs.close()  # also after input damage: what was read before it is kept
    finally:
        if reader is not None:
            reader.close()
    written = [p for p in (args.out, args.out_bag) if p]
    skipped = f', {skips.total} skipped ({skips.text()})' if skips.total else ''
    print(f'infer: {timing.frames} frames from {source}{skipped} -> {", ".join(written)} | '
          f'{timing.summary_line()}')
    for reason, message in skips.examples.items():
        print(f'  skipped ({reason}), e.g.: {message}')
    if error is not None:
        raise error
    if not timing.frames:
        raise DataError(f'{source}: no frame was segmented'
                        + (f' ({skips.total} skipped: {skips.text()})' if skips.total else ''))
    return 0
