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
Frame sources for the offline tools: image folders and bag topics, decoded in a worker pool.

A source yields :class:`FrameJob` objects in order; :func:`ordered_map` runs their decoding in
threads (OpenCV releases the GIL) and hands the results back in the same order, so the model
runs deterministically on the main thread while the next frames are decoded. A frame that cannot
be decoded is not an error: it comes back with ``skip`` set to a stable reason code.
"""

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import (Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, TypeVar)

import numpy as np

from seg_perception.core.errors import DataError, InputError
from seg_perception.core.imagecodec import decode_compressed
from seg_perception.io import bags as bagio
from seg_perception.io.images import list_images, read_image


DEFAULT_WORKERS = 2
MATCH_WINDOW_S = 5.0

T = TypeVar('T')
R = TypeVar('R')


@dataclass
class FrameJob:
    """A frame to decode: where it comes from and how to load it (run in a worker)."""

    index: int
    name: str
    load_image: Callable[[], Tuple[np.ndarray, str]]
    load_gt: Optional[Callable[[], np.ndarray]] = None
    stamp: Optional[int] = None
    frame_id: str = ''
    log_time: Optional[int] = None
    source_message: Optional[bagio.BagMessage] = None
    skip: Optional[str] = None
    skip_message: str = ''
    load_extras: Dict[str, Callable[[], Any]] = field(default_factory=dict)


@dataclass
class Frame:
    """A decoded frame: the image (and ground truth), or the reason it was skipped."""

    job: FrameJob
    image: Optional[np.ndarray] = None
    encoding: str = ''
    gt: Optional[np.ndarray] = None
    skip: Optional[str] = None
    skip_message: str = ''
    extras: Dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Return the frame name: the file stem or the stamp."""
        return self.job.name


def decode(job: FrameJob) -> Frame:
    """Load a job's image and ground truth; decoding failures become a skip reason."""
    if job.skip:
        return Frame(job, skip=job.skip, skip_message=job.skip_message)
    try:
        image, encoding = job.load_image()
        gt = job.load_gt() if job.load_gt is not None else None
        extras = {name: load() for name, load in job.load_extras.items()}
    except InputError as error:
        return Frame(job, skip=error.reason, skip_message=str(error))
    frame = Frame(job, image=image, encoding=encoding, gt=gt, extras=extras)
    if gt is not None and gt.shape[:2] != image.shape[:2]:
        frame.skip = 'gt_size_mismatch'
        frame.skip_message = (f'{job.name}: ground truth is {gt.shape[1]}x{gt.shape[0]}, the '
                              f'image {image.shape[1]}x{image.shape[0]}')
    return frame


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int = DEFAULT_WORKERS,
                depth: int = 0) -> Iterator[R]:
    """
    Yield function(item) for each item, in order, computed by a pool of threads.

    At most ``depth`` (default 2 x workers) results are pending. If the item iterator raises
    (e.g. a truncated bag), the results already submitted are yielded first, then the error
    is re-raised.
    """
    depth = depth or 2 * max(1, workers)
    if workers <= 0:
        for item in items:
            yield function(item)
        return
    iterator = iter(items)
    pending: Deque[Future] = deque()
    source_error: Optional[BaseException] = None
    exhausted = False
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix='decode') as pool:
        try:
            while True:
                while not exhausted and len(pending) < depth:
                    try:
                        item = next(iterator)
                    except StopIteration:
                        exhausted = True
                    except DataError as error:
                        source_error = error
                        exhausted = True
                    else:
                        pending.append(pool.submit(function, item))
                if not pending:
                    break
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
    if source_error is not None:
        raise source_error


def read_label(path: Path, lut: Optional[np.ndarray] = None) -> np.ndarray:
    """Read a label PNG (8-bit, one channel) with the core codec; map its values through lut."""
    try:
        labels, _ = decode_compressed(path.read_bytes(), 'png', source=str(path))
    except (OSError, InputError) as error:
        raise InputError(f'{path}: label image cannot be read ({error})', 'gt_unreadable'
                         ) from None
    return check_label(labels, str(path), lut)


def check_label(labels: np.ndarray, source: str, lut: Optional[np.ndarray] = None) -> np.ndarray:
    """Check a label image is 8-bit single-channel and apply the dataset -> training-id lut."""
    if labels.ndim == 3 and labels.shape[2] == 1:
        labels = labels[:, :, 0]
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise InputError(f'{source}: label image must be 8-bit single-channel (mono8), got '
                         f'shape {labels.shape} {labels.dtype}', 'gt_not_mono8')
    return lut[labels] if lut is not None else labels


def folder_jobs(images: str, labels: Optional[str] = None, lut: Optional[np.ndarray] = None,
                every: int = 1, limit: Optional[int] = None) -> Tuple[List[FrameJob], int]:
    """
    Return jobs for an image folder (labels matched by file stem) and the orphan label count.

    An image without a label file becomes a job skipped with reason ``no_gt``.
    """
    every_file = list_images(images)
    files = every_file[::max(1, every)]
    if limit is not None:
        files = files[:limit]
    label_files: Dict[str, Path] = {}
    if labels is not None:
        label_files = {p.stem: p for p in list_images(labels, 'labels')}
    jobs = []
    for index, path in enumerate(files):
        job = FrameJob(index, path.stem, _bind(read_image, path))
        if labels is not None:
            label_path = label_files.get(path.stem)
            if label_path is None:
                job.skip = 'no_gt'
                job.skip_message = f'{path}: no label file {path.stem}.* in {labels}'
            else:
                job.load_gt = _bind(read_label, label_path, lut)
        jobs.append(job)
    images_there = {p.stem for p in every_file}  # --every/--max leave labels out, not orphaned
    orphans = sum(1 for stem in label_files if stem not in images_there) if labels else 0
    return jobs, orphans


def _bind(function: Callable[..., R], *args: Any) -> Callable[[], R]:
    return lambda: function(*args)


# -- bags ----------------------------------------------------------------------------------------
def bag_image_loader(reader: bagio.BagReader, message: Any, msgtype: str,
                     source: str) -> Callable[[], Tuple[np.ndarray, str]]:
    """Return a loader decoding a deserialized image message (run in a worker)."""
    return lambda: bagio.image_from_message(message, msgtype, source)


def bag_label_loader(message: Any, msgtype: str, source: str,
                     lut: Optional[np.ndarray] = None) -> Callable[[], np.ndarray]:
    """Return a loader decoding a mono8 ground-truth label message (run in a worker)."""
    def load() -> np.ndarray:
        return check_label(bagio.labels_from_message(message, msgtype, source), source, lut)
    return load


def frame_name(stamp: int) -> str:
    """Return the file name stem of a bag frame: its header stamp in nanoseconds."""
    return f'{stamp:019d}'


def bag_jobs(reader: bagio.BagReader, image_topic: str, every: int = 1,
             limit: Optional[int] = None) -> Iterator[FrameJob]:
    """Yield jobs for the messages of an image topic (every n-th, at most ``limit``)."""
    msgtype = reader.require_topic(image_topic, bagio.IMAGE_TYPES, 'image topic')
    produced = 0
    for position, message in enumerate(reader.messages([image_topic])):
        if position % max(1, every):
            continue
        if limit is not None and produced >= limit:
            return
        yield image_job(reader, message, msgtype, produced)
        produced += 1


def image_job(reader: bagio.BagReader, message: bagio.BagMessage, msgtype: str,
              index: int, labels: bool = False) -> FrameJob:
    """
    Return the job of one image message (deserialized here for its stamp, decoded later).

    ``labels`` reads the message as a label map (mono8 or 8UC1) instead of a camera image.
    """
    source = f'{message.topic} message {message.index}'
    try:
        decoded = reader.deserialize(message)
        stamp = bagio.stamp_ns(decoded)
    except DataError as error:
        return FrameJob(index, f'message_{message.index:06d}', _no_image,
                        log_time=message.log_time, skip='corrupt_message',
                        skip_message=str(error))
    source = f'{source} (stamp {bagio.format_stamp(stamp)})'
    if labels:
        def load() -> Tuple[np.ndarray, str]:
            return bagio.labels_from_message(decoded, msgtype, source), 'mono8'
    else:
        load = bag_image_loader(reader, decoded, msgtype, source)
    return FrameJob(index, frame_name(stamp), load,
                    stamp=stamp, frame_id=decoded.header.frame_id, log_time=message.log_time,
                    source_message=message)


def _no_image() -> Tuple[np.ndarray, str]:  # pragma: no cover - skipped jobs never load
    raise InputError('no image', 'corrupt_message')


@dataclass
class MatchStats:
    """Ground-truth messages that matched no image (by stamp)."""

    gt_without_image: int = 0
    duplicate_gt: int = 0


class StampPairs:
    """
    Pair two message streams by header stamp (exact nanoseconds): the one stamp matcher.

    Side 0 is the frames (images or recorded predictions), side 1 the ground truth. On each side
    the first message of a stamp wins: a later one with a stamp that waits or already matched is
    a duplicate (a looped replay, a driver repeating its stamp), counted per side. A message
    waits until its partner arrives or :meth:`expire` drops it.
    """

    MATCHED, WAITING, DUPLICATE = 'matched', 'waiting', 'duplicate'

    def __init__(self) -> None:
        self.waiting: Tuple[Dict[int, Any], Dict[int, Any]] = ({}, {})
        self.matched: set = set()
        self.duplicates = [0, 0]

    def offer(self, side: int, stamp: int, item: Any) -> Tuple[str, Any]:
        """Add a message; return (MATCHED, partner), (WAITING, None) or (DUPLICATE, None)."""
        own, other = self.waiting[side], self.waiting[1 - side]
        if stamp in own or stamp in self.matched:
            self.duplicates[side] += 1
            return self.DUPLICATE, None
        partner = other.pop(stamp, None)
        if partner is not None:
            self.matched.add(stamp)
            return self.MATCHED, partner
        own[stamp] = item
        return self.WAITING, None

    def expire(self, side: int, is_stale: Callable[[Any], bool]) -> List[Any]:
        """Remove and return the waiting items of a side that ``is_stale`` says are too old."""
        own = self.waiting[side]
        stale = [stamp for stamp, item in own.items() if is_stale(item)]
        return [own.pop(stamp) for stamp in stale]


@dataclass
class StampIndex:
    """
    Whole topics read into memory by header stamp (:func:`index_by_stamp`).

    ``messages`` is {topic: {stamp: (msgtype, message)}}; ``duplicates`` counts the later
    messages of a stamp per topic (and ``<topic> unreadable`` the ones that cannot be
    deserialized); ``error`` is the BagReadError that cut the read short (a truncated bag):
    everything before it is kept.
    """

    messages: Dict[str, Dict[int, Tuple[str, Any]]]
    duplicates: Dict[str, int]
    error: Optional[bagio.BagReadError] = None


def index_by_stamp(reader: bagio.BagReader, topics: Sequence[str]) -> StampIndex:
    """
    Read whole topics into a :class:`StampIndex`; a truncated bag gives what precedes the cut.

    The same rule as :class:`StampPairs`: the first message of a stamp wins, later ones are
    counted. A message that cannot be deserialized is counted as a duplicate would be (under
    ``<topic> unreadable``), never dropped silently.
    """
    index = StampIndex({topic: {} for topic in topics}, {})
    counts = index.duplicates
    try:
        for message in reader.messages(list(topics)):
            try:
                decoded = reader.deserialize(message)
            except DataError:
                key = f'{message.topic} unreadable'
                counts[key] = counts.get(key, 0) + 1
                continue
            stamp = bagio.stamp_ns(decoded)
            if stamp in index.messages[message.topic]:
                counts[message.topic] = counts.get(message.topic, 0) + 1
                continue
            index.messages[message.topic][stamp] = (message.msgtype, decoded)
    except bagio.BagReadError as error:
        index.error = error
    return index


def matched_bag_jobs(reader: bagio.BagReader, image_topic: str, gt_topic: str,
                     lut: Optional[np.ndarray], stats: MatchStats,
                     window_s: float = MATCH_WINDOW_S, limit: Optional[int] = None
                     ) -> Iterator[FrameJob]:
    """
    Yield image jobs with ground truth matched by header stamp (:class:`StampPairs`).

    Messages are read once in log-time order; an image waits for its label (and a label for its
    image) until the bag's log time is ``window_s`` past it. Images without a label come out
    skipped with reason ``no_gt``; labels without an image are counted in ``stats``.
    """
    image_type = reader.require_topic(image_topic, bagio.IMAGE_TYPES, 'image topic')
    gt_type = reader.require_topic(gt_topic, (bagio.IMAGE,), 'ground-truth topic')
    window = int(window_s * 1e9)
    pairs = StampPairs()
    produced = 0

    def emit(job: FrameJob) -> FrameJob:
        nonlocal produced
        job.index = produced
        produced += 1
        return job

    def no_gt(job: FrameJob) -> FrameJob:
        job.skip = 'no_gt'
        job.skip_message = f'{image_topic} stamp {bagio.format_stamp(job.stamp)}: no label on ' \
                           f'{gt_topic} with the same stamp'
        return emit(job)

    def expire(now: int) -> Iterator[FrameJob]:
        for job in sorted(pairs.expire(0, lambda j: j.log_time < now - window),
                          key=lambda j: j.log_time):
            if done():
                return
            yield no_gt(job)
        stats.gt_without_image += len(pairs.expire(1, lambda label: label[0] < now - window))

    def done() -> bool:
        return limit is not None and produced >= limit

    try:
        for message in reader.messages([image_topic, gt_topic]):
            # what waited longer than the window expires before this message can match it
            yield from expire(message.log_time)
            if done():
                return
            if message.topic == image_topic:
                job = image_job(reader, message, image_type, -1)
                if job.stamp is None:
                    yield emit(job)
                    continue
                outcome, label = pairs.offer(0, job.stamp, job)
                if outcome == StampPairs.DUPLICATE:
                    job.skip = 'duplicate_stamp'
                    job.skip_message = f'{image_topic} stamp {bagio.format_stamp(job.stamp)} ' \
                                       'seen before; scored once'
                    yield emit(job)
                elif outcome == StampPairs.MATCHED:
                    job.load_gt = label[1]
                    yield emit(job)
            else:
                try:
                    decoded = reader.deserialize(message)
                except DataError:
                    stats.gt_without_image += 1
                    continue
                stamp = bagio.stamp_ns(decoded)
                loader = bag_label_loader(decoded, gt_type, f'{gt_topic} stamp '
                                          f'{bagio.format_stamp(stamp)}', lut)
                outcome, job = pairs.offer(1, stamp, (message.log_time, loader))
                if outcome == StampPairs.MATCHED:
                    job.load_gt = loader
                    yield emit(job)
                elif outcome == StampPairs.DUPLICATE:
                    stats.duplicate_gt += 1
    except bagio.BagReadError:
        for job in sorted(pairs.waiting[0].values(), key=lambda j: j.log_time):
            job.skip = 'bag_truncated'
            job.skip_message = f'{image_topic} stamp {bagio.format_stamp(job.stamp)}: its ' \
                               'label may be after the point where the bag is cut'
            yield emit(job)
        raise
    for job in sorted(pairs.waiting[0].values(), key=lambda j: j.log_time):
        if done():
            return
        yield no_gt(job)
    stats.gt_without_image += len(pairs.waiting[1])


def default_workers() -> int:
    """Return the default decode/write pool size (2, or 1 on a one-core machine)."""
    return max(1, min(DEFAULT_WORKERS, os.cpu_count() or 1))
