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
Bag reading and writing over the ``rosbags`` library: no rosbag2 or ROS install needed.

Reads ROS 2 bags (a bag directory, a single ``.mcap`` or ``.db3`` file) and ROS 1 ``.bag`` files;
writes ROS 2 bags as a single ``.mcap``/``.db3`` file or a bag directory, and ROS 1 ``.bag``
files. Images become numpy arrays through the core codec (``seg_perception.core.imagecodec``).

A truncated MCAP file (a recorder that was killed never writes the footer), or one whose summary
is damaged, is read record by record up to the damage; the read then stops with
:class:`BagReadError` naming the byte offset, so tools can keep and write what they have and
still fail.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, is_dataclass
import functools
import os
from pathlib import Path
import shutil
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag1 import WriterError as Ros1WriterError
from rosbags.rosbag2 import Reader as Ros2Reader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.rosbag2 import WriterError as Ros2WriterError
from rosbags.rosbag2.reader import DirectoryReader
from rosbags.rosbag2.storage_mcap import McapReader, Statistics
from rosbags.typesys import get_typestore, Stores
from rosbags.typesys.store import Typestore

from seg_perception.core import imagecodec
from seg_perception.core.errors import DataError, InputError, one_line


IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
LABEL_ENCODINGS = ('mono8', '8UC1')  # 8UC1: what cv_bridge passthrough writes for labels

DISTROS = {
    'kilted': Stores.ROS2_KILTED,
    'jazzy': Stores.ROS2_JAZZY,
    'humble': Stores.ROS2_HUMBLE,
    'noetic': Stores.ROS1_NOETIC,
}
DEFAULT_DISTRO = 'kilted'
STORAGES = ('mcap', 'sqlite3')
DEFAULT_STORAGE = 'mcap'
DEFAULT_IMAGE_TOPIC = '/camera/image_raw'
DEFAULT_CAMERA_INFO_TOPIC = '/camera/camera_info'
DEFAULT_GT_TOPIC = '/camera/labels_gt'
DEFAULT_LABELS_TOPIC = '/segmentation/labels'

# rosbags parses untrusted bytes: a corrupt bag can surface as any of its own errors or as
# struct.error, OverflowError, UnicodeDecodeError, ... from deep inside. Every one of them means
# "this bag is damaged here", so readers catch them all (KeyboardInterrupt is not an Exception).
_READ_ERRORS = (Exception,)
_TRUNCATED_MCAP = ('File end magic is invalid', 'Invalid MCAP footer')
_NOT_MCAP = ('File magic is invalid', 'Profile is not ros2', 'Unexpected record',
             'seems to be empty')


class BagReadError(DataError):
    """
    Reading stopped in the middle of a bag (corrupt or truncated); earlier messages are valid.

    ``messages_read`` counts the messages delivered before the failure.
    """

    def __init__(self, message: str, messages_read: int) -> None:
        super().__init__(message)
        self.messages_read = messages_read


@functools.lru_cache(maxsize=None)
def typestore(distro: str = DEFAULT_DISTRO) -> Typestore:
    """Return the rosbags typestore of a ROS distribution (kilted, jazzy, humble, noetic)."""
    if distro not in DISTROS:
        raise DataError(f'unknown ROS distribution {distro!r}; choose one of {list(DISTROS)}')
    return get_typestore(DISTROS[distro])


def stamp_ns(message: Any) -> int:
    """Return the header stamp of a message in nanoseconds."""
    stamp = message.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def format_stamp(nanoseconds: int) -> str:
    """Return a stamp as ``sec.nanosec`` (the form ``ros2 topic echo`` shows)."""
    return f'{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}'


# -- reading -----------------------------------------------------------------------------------
class _SalvageMcapReader(McapReader):
    """
    MCAP storage reader that scans a file record by record when its summary is unusable.

    A killed recorder leaves no footer; a damaged summary or index can fail in many ways. The
    data records before the damage are still good: they are found by a sequential scan.
    """

    def _open(self) -> None:
        try:
            super()._open()
        except Exception as error:  # noqa: BLE001 - any failure of the summary: scan instead
            if str(error).startswith(_NOT_MCAP) or self.bio is None:
                raise
            self.data_end = self.bio.seek(0, os.SEEK_END)
            self.chunks = []
            try:
                self.meta_scan()  # schemas and channels come first; stops at the damage
            except Exception:  # noqa: BLE001 - the scan ends where the file is damaged
                pass
            self.statistics = Statistics(0, len(self.schemas), len(self.channels), 0, 0, 0,
                                         0, 0, {})


class _SalvageDirectoryReader(DirectoryReader):
    STORAGE_PLUGINS = {**DirectoryReader.STORAGE_PLUGINS, 'mcap': _SalvageMcapReader}


class _SalvageRos2Reader(Ros2Reader):
    STORAGE_PLUGINS = {**Ros2Reader.STORAGE_PLUGINS, 'dir': _SalvageDirectoryReader,
                       '.mcap': _SalvageMcapReader}


@dataclass(frozen=True)
class TopicSummary:
    """One topic of a bag: its name, message type and message count."""

    name: str
    msgtype: str
    count: int


@dataclass
class BagMessage:
    """A serialized message read from a bag; ``index`` counts the messages read so far."""

    topic: str
    msgtype: str
    log_time: int
    raw: bytes
    index: int


class BagReader:
    """
    Read a ROS 1 or ROS 2 bag with rosbags; every failure is a one-line DataError.

    Use as a context manager. ``truncated`` is set when the bag had to be salvaged (an MCAP file
    without footer): its messages can be read up to the cut, then BagReadError is raised.
    """

    def __init__(self, path: str, default_distro: str = DEFAULT_DISTRO) -> None:
        self.path = str(path)
        self.default_distro = default_distro
        self.truncated: Optional[str] = None
        self._reader: Optional[AnyReader] = None

    # -- context -------------------------------------------------------------------------------
    def __enter__(self) -> 'BagReader':
        """Open the bag."""
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Close the bag."""
        self.close()

    def open(self) -> None:
        """Open the bag; a missing, unreadable or corrupt bag raises DataError naming it."""
        path = Path(self.path)
        if not path.exists():
            raise DataError(f'{self.path}: bag not found')
        if path.is_dir() and not (path / 'metadata.yaml').exists():
            raise DataError(f'{self.path}: not a bag (a bag directory has a metadata.yaml; or '
                            'give a .mcap, .db3 or .bag file)')
        if path.is_file() and path.suffix not in ('.mcap', '.db3', '.bag'):
            raise DataError(f'{self.path}: unknown bag format {path.suffix!r} (expected a '
                            '.mcap, .db3 or ROS 1 .bag file, or a ROS 2 bag directory)')
        default_store = typestore('noetic' if path.suffix == '.bag' else self.default_distro)
        try:
            self._reader = self._open_reader(path, default_store, salvage=False)
        except _READ_ERRORS as error:
            if not self._uses_mcap(path) or str(error).startswith(_NOT_MCAP):
                raise DataError(f'{self.path}: cannot open bag ({one_line(error)})') from None
            self.truncated = (f'no MCAP footer, the file is truncated ({one_line(error)})'
                              if str(error).startswith(_TRUNCATED_MCAP) else
                              f'MCAP summary unreadable ({one_line(error)})')
            self._salvage(path, default_store)

    def _salvage(self, path: Path, default_store: Typestore) -> None:
        """Open an MCAP bag whose summary failed by scanning its records from the start."""
        try:
            self._reader = self._open_reader(path, default_store, salvage=True)
        except _READ_ERRORS as error:
            raise DataError(f'{self.path}: cannot open bag: {self.truncated}, and nothing '
                            f'could be salvaged ({one_line(error)})') from None
        if not self._reader.connections:
            self.close()
            raise DataError(f'{self.path}: cannot open bag: {self.truncated}; the damage is '
                            'before the first complete chunk, nothing can be salvaged')

    @staticmethod
    def _uses_mcap(path: Path) -> bool:
        if path.is_dir():
            return any(p.suffix == '.mcap' for p in path.iterdir())
        return path.suffix == '.mcap'

    @staticmethod
    def _open_reader(path: Path, default_store: Typestore, salvage: bool) -> AnyReader:
        reader = AnyReader([path], default_typestore=default_store)
        if salvage:
            reader.readers = [_SalvageRos2Reader(path)]
        reader.open()
        return reader

    def close(self) -> None:
        """Close the bag (idempotent)."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            try:
                reader.close()
            except _READ_ERRORS:
                pass

    @property
    def reader(self) -> AnyReader:
        """Return the open rosbags AnyReader."""
        if self._reader is None:
            raise DataError(f'{self.path}: bag is not open')
        return self._reader

    @property
    def is_ros1(self) -> bool:
        """Return True for a ROS 1 bag (ROS 1 serialization)."""
        return not self.reader.is2

    # -- topics --------------------------------------------------------------------------------
    def topics(self) -> Dict[str, TopicSummary]:
        """Return the bag's topics by name (count 0 when a salvaged bag has no index)."""
        summary: Dict[str, TopicSummary] = {}
        for connection in self.reader.connections:
            known = summary.get(connection.topic)
            count = connection.msgcount + (known.count if known else 0)
            summary[connection.topic] = TopicSummary(connection.topic, connection.msgtype, count)
        return dict(sorted(summary.items()))

    def describe_topics(self) -> str:
        """Return the topics as one line for error messages."""
        topics = self.topics()
        if not topics:
            return 'the bag has no topics'
        counted = not self.truncated
        return 'the bag has ' + ', '.join(
            f'{t.name} ({t.msgtype}' + (f', {t.count} msgs)' if counted else ')')
            for t in topics.values())

    def require_topic(self, topic: str, accepted: Sequence[str] = IMAGE_TYPES,
                      role: str = 'topic') -> str:
        """Return the message type of topic; a missing topic or wrong type raises DataError."""
        topics = self.topics()
        if not topics:
            raise DataError(f'{self.path}: the bag is empty (no topics)')
        if topic not in topics:
            raise DataError(f'{self.path}: {role} {topic!r} not found; '
                            f'{self.describe_topics()}')
        msgtype = topics[topic].msgtype
        if accepted and msgtype not in accepted:
            raise DataError(f'{self.path}: {role} {topic!r} has type {msgtype}; expected '
                            f'{" or ".join(accepted)}')
        if topics[topic].count == 0 and not self.truncated:
            raise DataError(f'{self.path}: {role} {topic!r} has no messages')
        return msgtype

    def topics_of_type(self, msgtypes: Iterable[str]) -> List[str]:
        """Return the topics whose message type is one of msgtypes."""
        wanted = set(msgtypes)
        return [t.name for t in self.topics().values() if t.msgtype in wanted]

    # -- messages ------------------------------------------------------------------------------
    def messages(self, topics: Optional[Iterable[str]] = None,
                 start_ns: Optional[int] = None) -> Iterator[BagMessage]:
        """
        Yield the serialized messages of topics (all when None) in log-time order.

        A read failure in the middle of the bag raises BagReadError naming the bag, the number of
        messages read and the last good log time; the messages before it were yielded.
        """
        wanted = None if topics is None else set(topics)
        connections = [c for c in self.reader.connections
                       if wanted is None or c.topic in wanted]
        if not connections:
            return
        count = 0
        last_time: Optional[int] = None
        iterator = self.reader.messages(connections=connections, start=start_ns)
        while True:
            try:
                connection, log_time, raw = next(iterator)
            except StopIteration:
                break
            except _READ_ERRORS as error:
                where = (f'after {count} messages (last log time {format_stamp(last_time)})'
                         if last_time is not None else 'before the first message')
                kind = self._damage_kind()
                raise BagReadError(f'{self.path}: bag {kind}: reading stopped {where} at '
                                   f'{one_line(error)}', count) from None
            yield BagMessage(connection.topic, connection.msgtype, log_time, raw, count)
            count += 1
            last_time = log_time
        if self.truncated:
            raise BagReadError(f'{self.path}: bag {self._damage_kind()}: {self.truncated}; '
                               f'read {count} messages up to the damage', count)

    def _damage_kind(self) -> str:
        if not self.truncated:
            return 'corrupt'
        return 'truncated' if self.truncated.startswith('no MCAP footer') else 'damaged'

    def deserialize(self, message: BagMessage) -> Any:
        """Deserialize a message; a corrupt message raises DataError naming it."""
        try:
            return self.reader.deserialize(message.raw, message.msgtype)
        except _READ_ERRORS as error:
            raise DataError(f'{self.path}: message {message.index} on {message.topic} '
                            f'(log time {format_stamp(message.log_time)}) cannot be '
                            f'deserialized ({one_line(error)})') from None

    def to_cdr(self, message: BagMessage, out_store: Optional[Typestore] = None) -> bytes:
        """Return the message as ROS 2 CDR bytes (as-is for ROS 2 bags, converted for ROS 1)."""
        if not self.is_ros1:
            return bytes(message.raw)
        store = out_store or typestore()
        decoded = self.deserialize(message)
        try:
            converted = convert_message(decoded, store)
            return bytes(store.serialize_cdr(converted, message.msgtype))
        except Exception as error:  # noqa: BLE001 - unknown type or fields that do not map
            raise DataError(f'{self.path}: {message.topic} ({message.msgtype}) cannot be '
                            f'converted from ROS 1 to ROS 2 ({one_line(error)})') from None


def convert_message(message: Any, store: Typestore) -> Any:
    """
    Rebuild a message (e.g. read from a ROS 1 bag) as the same type of another typestore.

    Fields are matched by name, case-insensitively (ROS 1 ``K`` is ROS 2 ``k``); fields the
    target type does not have (ROS 1 ``Header.seq``) are dropped.
    """
    cls = store.types[message.__msgtype__]
    source = {f.name.lower(): f.name for f in fields(message) if f.name != '__msgtype__'}
    kwargs = {}
    for target in fields(cls):
        if target.name == '__msgtype__':
            continue
        value = getattr(message, source[target.name.lower()])
        if is_dataclass(value):
            value = convert_message(value, store)
        elif isinstance(value, list) and value and is_dataclass(value[0]):
            value = [convert_message(v, store) for v in value]
        kwargs[target.name] = value
    return cls(**kwargs)


def image_from_message(message: Any, msgtype: str,
                       source: str = 'image') -> Tuple[np.ndarray, str]:
    """
    Return (array, encoding) of a deserialized Image or CompressedImage (raises InputError).

    ``source`` names the message in error messages (e.g. topic and stamp).
    """
    if msgtype == COMPRESSED_IMAGE:
        return imagecodec.decode_compressed(message.data, message.format, source=source)
    array = imagecodec.image_from_buffer(message.data, int(message.height), int(message.width),
                                         message.encoding, int(message.step),
                                         bool(message.is_bigendian), source=source)
    return array, message.encoding


def labels_from_message(message: Any, msgtype: str, source: str = 'labels') -> np.ndarray:
    """
    Return the HxW uint8 class ids of a label Image (mono8, or 8UC1 as cv_bridge passthrough).

    Other encodings and CompressedImage raise InputError with reason ``gt_not_mono8``.
    """
    encoding = getattr(message, 'encoding', None)
    if msgtype != IMAGE or encoding not in LABEL_ENCODINGS:
        raise InputError(f'{source}: label maps must be mono8 sensor_msgs/Image, got '
                         f'{encoding or msgtype}', 'gt_not_mono8')
    return imagecodec.image_from_buffer(message.data, int(message.height), int(message.width),
                                        'mono8', int(message.step), source=source)


# -- message construction ------------------------------------------------------------------------
def _field_map(cls: Any) -> Dict[str, str]:
    return {f.name.lower(): f.name for f in fields(cls) if f.name != '__msgtype__'}


def make_header(store: Typestore, stamp: int, frame_id: str, seq: int = 0) -> Any:
    """Return a std_msgs/Header (with ``seq`` for ROS 1 stores)."""
    header_cls = store.types['std_msgs/msg/Header']
    time_cls = store.types['builtin_interfaces/msg/Time']
    time = time_cls(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000)
    kwargs: Dict[str, Any] = {'stamp': time, 'frame_id': frame_id}
    if 'seq' in _field_map(header_cls):
        kwargs['seq'] = seq
    return header_cls(**kwargs)


def make_image(store: Typestore, array: np.ndarray, encoding: str, header: Any) -> Any:
    """Return a sensor_msgs/Image holding array (encoded by the core codec)."""
    data, step = imagecodec.array_to_buffer(array, encoding)
    return store.types[IMAGE](header=header, height=int(array.shape[0]),
                              width=int(array.shape[1]), encoding=encoding, is_bigendian=0,
                              step=int(step), data=np.frombuffer(data, np.uint8))


def make_compressed_image(store: Typestore, array: np.ndarray, encoding: str, fmt: str,
                          header: Any) -> Any:
    """Return a sensor_msgs/CompressedImage (``fmt`` jpeg or png, by the core codec)."""
    data = imagecodec.encode_compressed(array, encoding, fmt)
    return store.types[COMPRESSED_IMAGE](header=header,
                                         format=imagecodec.compressed_format(encoding, fmt),
                                         data=np.frombuffer(data, np.uint8))


def make_camera_info(store: Typestore, header: Any, width: int, height: int,
                     distortion_model: str, d: Sequence[float], k: Sequence[float],
                     r: Sequence[float], p: Sequence[float]) -> Any:
    """Return a sensor_msgs/CameraInfo (field names adapt to ROS 1 ``D``/``K`` or ROS 2 ``d``)."""
    cls = store.types[CAMERA_INFO]
    names = _field_map(cls)
    roi_cls = store.types['sensor_msgs/msg/RegionOfInterest']
    values = {
        'header': header, 'height': height, 'width': width,
        'distortion_model': distortion_model,
        'd': np.asarray(d, np.float64), 'k': np.asarray(k, np.float64),
        'r': np.asarray(r, np.float64), 'p': np.asarray(p, np.float64),
        'binning_x': 0, 'binning_y': 0,
        'roi': roi_cls(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    }
    return cls(**{names[key]: value for key, value in values.items()})


# -- writing -----------------------------------------------------------------------------------
class BagWriter:
    """
    Write a bag: ``X.mcap``/``X.db3`` (one ROS 2 file), ``X.bag`` (ROS 1) or a directory.

    A directory path gives a ROS 2 bag directory with ``storage`` (mcap or sqlite3). The output
    must not exist. Messages are built with :attr:`store` (see ``make_*``), then written with
    :meth:`write`, or written already serialized with :meth:`write_raw`. Any thread may call it:
    the rosbags writer runs on one thread of its own, because an sqlite3 connection refuses a
    thread other than the one that opened it.
    """

    def __init__(self, path: str, storage: str = DEFAULT_STORAGE,
                 distro: str = DEFAULT_DISTRO) -> None:
        self.path = Path(path)
        suffix = self.path.suffix
        if storage not in STORAGES:
            raise DataError(f'unknown bag storage {storage!r}; choose one of {list(STORAGES)}')
        if self.path.exists():
            raise DataError(f'{path}: exists already; remove it or choose another output')
        if not self.path.parent.is_dir():
            raise DataError(f'{path}: parent folder {self.path.parent} does not exist')
        self.ros1 = suffix == '.bag'
        if self.ros1 and distro != 'noetic':
            distro = 'noetic'
        elif not self.ros1 and distro == 'noetic':
            raise DataError(f'{path}: noetic message types need a ROS 1 .bag output')
        self.store = typestore(distro)
        self.single_file = suffix in ('.mcap', '.db3')
        if self.single_file:
            storage = 'mcap' if suffix == '.mcap' else 'sqlite3'
        self.storage = storage
        self._connections: Dict[str, Any] = {}
        self._types: Dict[str, str] = {}
        self.counts: Dict[str, int] = {}
        self._work_dir = (self.path.with_name(f'.{self.path.name}.partial')
                          if self.single_file else self.path)
        self._writer: Any = None
        self._owner = ThreadPoolExecutor(max_workers=1, thread_name_prefix='bag-writer')
        try:
            if self.ros1:
                self._writer = Ros1Writer(self.path)
            else:
                if self._work_dir.exists():
                    shutil.rmtree(self._work_dir)
                plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
                self._writer = Ros2Writer(self._work_dir, version=Ros2Writer.VERSION_LATEST,
                                          storage_plugin=plugin)
            self._on_owner(self._writer.open)
        except (Ros1WriterError, Ros2WriterError, OSError) as error:
            self._writer = None
            self._owner.shutdown()
            raise DataError(f'{path}: cannot create bag ({one_line(error)})') from None

    def _on_owner(self, function: Any, *args: Any) -> Any:
        """Run function(*args) on the writer's own thread and return its result."""
        return self._owner.submit(function, *args).result()

    def __enter__(self) -> 'BagWriter':
        """Return the open writer."""
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        """Close the bag (also after an error: what was written stays readable)."""
        self.close()

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic before writing to it (idempotent for the same type)."""
        if topic in self._connections:
            if self._types[topic] != msgtype:
                raise DataError(f'{self.path}: topic {topic!r} already has type '
                                f'{self._types[topic]}, not {msgtype}')
            return
        try:
            self._connections[topic] = self._on_owner(functools.partial(
                self._writer.add_connection, topic, msgtype, typestore=self.store))
        except (Ros1WriterError, Ros2WriterError, KeyError) as error:
            raise DataError(f'{self.path}: cannot add topic {topic!r} of type {msgtype} '
                            f'({one_line(error)})') from None
        self._types[topic] = msgtype
        self.counts[topic] = 0

    def write(self, topic: str, log_time: int, message: Any) -> None:
        """Serialize message (a type of :attr:`store`) and write it at log_time (ns)."""
        msgtype = message.__msgtype__
        self.add_topic(topic, msgtype)
        if self.ros1:
            raw = self.store.serialize_ros1(message, msgtype)
        else:
            raw = self.store.serialize_cdr(message, msgtype)
        self._write(topic, log_time, raw)

    def write_raw(self, topic: str, msgtype: str, log_time: int, raw: bytes) -> None:
        """Write an already serialized message (CDR; ROS 1 serialization for a .bag output)."""
        self.add_topic(topic, msgtype)
        self._write(topic, log_time, raw)

    def _write(self, topic: str, log_time: int, raw: Any) -> None:
        try:
            self._on_owner(self._writer.write, self._connections[topic], int(log_time), raw)
        except (Ros1WriterError, Ros2WriterError, OSError) as error:
            raise DataError(f'{self.path}: writing {topic!r} failed ({one_line(error)})'
                            ) from None
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag: write index and metadata; a single-file output is moved in place."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            self._on_owner(writer.close)
            if self.single_file:
                produced = [p for p in self._work_dir.iterdir() if p.name != 'metadata.yaml']
                if len(produced) != 1:
                    raise DataError(f'{self.path}: expected one storage file, got '
                                    f'{[p.name for p in produced]}')
                os.replace(produced[0], self.path)
                shutil.rmtree(self._work_dir)
        except (Ros1WriterError, Ros2WriterError, OSError) as error:
            raise DataError(f'{self.path}: closing the bag failed ({one_line(error)})') from None
        finally:
            self._owner.shutdown()

    def discard(self) -> None:
        """Abandon the bag: close it and delete everything written."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                self._on_owner(writer.close)
            except (Ros1WriterError, Ros2WriterError, OSError):
                pass
        self._owner.shutdown()
        for path in (self._work_dir, self.path):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
