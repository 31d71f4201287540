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
is damaged, is read record by record up to the damage; a ROS 1 bag without a readable index (a
killed ``rosbag record`` never writes it, a cut file loses it) is read chunk by chunk the same
way. The read then stops with :class:`BagReadError` naming where, so tools can keep and write
what they have and still fail. Writing goes through :mod:`seg_perception.core.atomic`: a bag
appears under its name only when it was closed cleanly.
"""

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, is_dataclass
import functools
from io import BytesIO
import os
from pathlib import Path
import sqlite3
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.rosbag1 import ReaderError as Ros1ReaderError
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag1 import WriterError as Ros1WriterError
from rosbags.rosbag1.reader import (Chunk, ChunkInfo, decompressors, Header, IndexData,
                                    read_uint32, RecordType)
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
from seg_perception.core.atomic import AtomicOutput


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
_NOT_ROS1 = ('File magic is invalid', 'seems to be empty', 'Bag version', 'Bag encryption',
             'Could not open file')
_UNINDEXED_ROS1 = 'Bag is not indexed'


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


class _SalvageRos1Reader(Ros1Reader):
    """
    ROS 1 reader that rebuilds the index of a bag from its chunks when the index is unusable.

    ``rosbag record`` writes the index only when it closes: a killed recorder leaves
    ``index_pos`` 0, a cut file loses the index with its end. The chunks before the damage still
    hold the connection records and the messages; they are read record by record (an
    uncompressed chunk cut in the middle up to its last whole message). ``scan_end`` is the
    byte offset where the scan stopped; ``scan_cut`` says the file ended inside a record.
    """

    scan_end = 0
    scan_cut = False

    def open(self) -> None:
        """Open the bag by scanning it (the indexed open failed already)."""
        if self.bio is not None:
            raise Ros1ReaderError('Reader is already open.')
        self.bio = self.path.open('rb')
        try:
            self._scan()
        except BaseException:
            try:
                self.close()
            except Exception:  # noqa: BLE001 - the error in flight says what went wrong
                pass
            raise

    def _scan(self) -> None:
        known: Dict[int, Connection] = {}
        indexes: Dict[int, List[IndexData]] = defaultdict(list)
        self._scan_records(known, indexes)
        self.connections = [Connection(*c[0:5], len(indexes[c.id]), *c[6:])
                            for c in known.values()]
        self.indexes = {c.id: sorted(indexes[c.id]) for c in self.connections}

    def _scan_records(self, known: Dict[int, Connection],
                      indexes: Dict[int, List[IndexData]]) -> None:
        """Read the top-level records up to the end of the file or the first damaged one."""
        bio = self.bio
        size = bio.seek(0, os.SEEK_END)
        bio.seek(0)
        bio.readline()  # '#ROSBAG V2.0', checked by the indexed open
        Header.read(bio, RecordType.BAGHEADER)
        bio.seek(read_uint32(bio), os.SEEK_CUR)
        while bio.tell() < size:
            position = bio.tell()
            self.scan_end = position
            try:
                header = Header.read(bio)
                op = header.get_uint8('op')
                length = read_uint32(bio)
            except Ros1ReaderError:
                self.scan_cut = True  # a record header cut by the end of the file
                return
            data_pos = bio.tell()
            available = min(length, size - data_pos)
            if op == RecordType.CHUNK:
                compression = header.get_string('compression')
                decompressor = decompressors.get(compression)
                if decompressor is None or (available < length and compression != 'none'):
                    self.scan_cut = available < length
                    return  # a compressed chunk cannot be read in part
                data = bio.read(available)
                try:
                    raw = decompressor(data) if available == length else data
                except Exception:  # noqa: BLE001 - a damaged compressed chunk: stop here
                    return
                if self._scan_chunk(position, raw, known, indexes):
                    self.chunks[position] = Chunk(len(data), data_pos, decompressor)
            elif op == RecordType.CONNECTION and available == length:
                bio.seek(position)
                self._add_connection(bio.read(data_pos - position + length), known)
            else:
                bio.seek(available, os.SEEK_CUR)  # index data, chunk info: rebuilt from chunks
            if available < length:
                self.scan_cut = True
                return
        self.scan_end = size

    def _scan_chunk(self, position: int, raw: bytes, known: Dict[int, Connection],
                    indexes: Dict[int, List[IndexData]]) -> bool:
        """Index the whole records of one chunk; return whether it holds a message."""
        stream = BytesIO(raw)
        counts: Dict[int, int] = defaultdict(int)
        first, last = 2 ** 63 - 1, 0
        while stream.tell() < len(raw):
            offset = stream.tell()
            try:
                header = Header.read(stream)
                op = header.get_uint8('op')
                length = read_uint32(stream)
                if stream.seek(length, os.SEEK_CUR) > len(raw):
                    break  # the last record, cut
            except Ros1ReaderError:
                break
            if op == RecordType.CONNECTION:
                self._add_connection(raw[offset:stream.tell()], known)
            elif op == RecordType.MSGDATA:
                try:
                    connection, time = header.get_uint32('conn'), header.get_time('time')
                except Ros1ReaderError:
                    break
                if connection not in known:
                    continue  # no type for it: cannot be deserialized
                indexes[connection].append(IndexData(time, position, offset))
                counts[connection] += 1
                first, last = min(first, time), max(last, time)
        if not counts:
            return False
        self.chunk_infos.append(ChunkInfo(position, first, last + 1, dict(counts)))
        return True

    def _add_connection(self, record: bytes, known: Dict[int, Connection]) -> None:
        """Parse a connection record with rosbags' own parser (it reads from ``self.bio``)."""
        bio, self.bio = self.bio, BytesIO(record)
        try:
            connection = self.read_connection()
        except Ros1ReaderError:
            return
        finally:
            self.bio = bio
        known.setdefault(connection.id, connection)


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
    without footer or summary, a ROS 1 bag without index): its messages can be read up to the
    damage, then BagReadError is raised.
    """

    def __init__(self, path: str, default_distro: str = DEFAULT_DISTRO) -> None:
        self.path = str(path)
        self.default_distro = default_distro
        self.truncated: Optional[str] = None
        self._damage = 'corrupt'  # what BagReadError calls the bag: truncated, damaged
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
            reason = str(error)
            if path.suffix == '.bag' and not reason.startswith(_NOT_ROS1):
                self.truncated = ('ROS 1 bag with no index (its recorder never closed it)'
                                  if reason.startswith(_UNINDEXED_ROS1) else
                                  f'ROS 1 bag index unreadable ({one_line(error)})')
            elif self._uses_mcap(path) and not reason.startswith(_NOT_MCAP):
                self.truncated = (f'no MCAP footer, the file is truncated ({one_line(error)})'
                                  if reason.startswith(_TRUNCATED_MCAP) else
                                  f'MCAP summary unreadable ({one_line(error)})')
                self._damage = 'truncated' if reason.startswith(_TRUNCATED_MCAP) else 'damaged'
            else:
                raise DataError(f'{self.path}: cannot open bag ({one_line(error)})') from None
            self._salvage(path, default_store)

    def _salvage(self, path: Path, default_store: Typestore) -> None:
        """Open a bag whose index failed by scanning its records (MCAP) or chunks (ROS 1)."""
        try:
            self._reader = self._open_reader(path, default_store, salvage=True)
        except _READ_ERRORS as error:
            raise DataError(f'{self.path}: cannot open bag: {self.truncated}, and nothing '
                            f'could be salvaged ({one_line(error)})') from None
        if not self._reader.connections:
            self.close()
            raise DataError(f'{self.path}: cannot open bag: {self.truncated}; the damage is '
                            'before the first complete chunk, nothing can be salvaged')
        scanned = self._reader.readers[0]
        if isinstance(scanned, _SalvageRos1Reader):
            self.truncated += f'; its chunks were scanned up to byte {scanned.scan_end}'
            unindexed = self.truncated.startswith('ROS 1 bag with no index')
            self._damage = 'truncated' if scanned.scan_cut or unindexed else 'damaged'

    @staticmethod
    def _uses_mcap(path: Path) -> bool:
        if path.is_dir():
            return any(p.suffix == '.mcap' for p in path.iterdir())
        return path.suffix == '.mcap'

    @staticmethod
    def _open_reader(path: Path, default_store: Typestore, salvage: bool) -> AnyReader:
        reader = AnyReader([path], default_typestore=default_store)
        if salvage:
            reader.readers = [_SalvageRos1Reader(path) if path.suffix == '.bag'
                              else _SalvageRos2Reader(path)]
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
        return self._damage if self.truncated else 'corrupt'

    def time_bounds(self) -> Optional[Tuple[int, int]]:
        """
        Return the (first, last) log time in ns of the bag's index; None if it has no messages.

        A salvaged MCAP bag has no index that could say (``truncated`` is set): None too.
        """
        reader = self.reader
        if not reader.message_count or reader.end_time <= reader.start_time:
            return None
        return reader.start_time, reader.end_time - 1

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
# what rosbags' writers raise on a write that fails: sqlite3 reports a full disk as
# OperationalError (not an OSError), MCAP and ROS 1 as OSError from the file
_WRITE_ERRORS = (Ros1WriterError, Ros2WriterError, OSError, sqlite3.Error)


class BagWriter:
    """
    Write a bag: ``X.mcap``/``X.db3`` (one ROS 2 file), ``X.bag`` (ROS 1) or a directory.

    A directory path gives a ROS 2 bag directory with ``storage`` (mcap or sqlite3). The output
    must not exist. Messages are built with :attr:`store` (see ``make_*``), then written with
    :meth:`write`, or written already serialized with :meth:`write_raw`. Any thread may call it:
    the rosbags writer runs on one thread of its own, because an sqlite3 connection refuses a
    thread other than the one that opened it.

    Every format is written under a hidden ``.X.partial-PID`` sibling and renamed to ``X``
    only by a clean :meth:`close` (:class:`~seg_perception.core.atomic.AtomicOutput`). The first
    failed write (a full disk) is a DataError naming ``X``; it deletes what was written, and
    every later write and the close raise again, so no caller can report a bag that is not
    there.
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
        self.error: Optional[DataError] = None  # the first failure; the bag is gone then
        self._closed = False
        self._output = AtomicOutput(self.path)
        # ROS 1: the partial file itself; ROS 2: a bag directory inside the partial folder,
        # named like the output so that its metadata.yaml names the right storage file
        self._bag_dir = self._output.temp / (self.path.name if not self.single_file else 'bag')
        self._writer: Any = None
        self._owner = ThreadPoolExecutor(max_workers=1, thread_name_prefix='bag-writer')
        try:
            if self.ros1:
                self._writer = Ros1Writer(self._output.temp)
            else:
                self._output.temp.mkdir()
                plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
                self._writer = Ros2Writer(self._bag_dir, version=Ros2Writer.VERSION_LATEST,
                                          storage_plugin=plugin)
            self._on_owner(self._writer.open)
        except _WRITE_ERRORS as error:
            self._writer = None
            self._owner.shutdown()
            self._output.discard()
            raise DataError(f'{path}: cannot create bag ({one_line(error)})') from None

    def _on_owner(self, function: Any, *args: Any) -> Any:
        """Run function(*args) on the writer's own thread and return its result."""
        return self._owner.submit(function, *args).result()

    def __enter__(self) -> 'BagWriter':
        """Return the open writer."""
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        """Close the bag (also after an error: what was written stays readable)."""
        if exc_type is not None and self.error is not None:
            self.discard()  # the bag failed already; the error in flight says why
            return
        self.close()

    def _check_open(self) -> None:
        """Raise DataError if the bag failed or was closed: nothing more can be written."""
        if self.error is not None:
            raise DataError(f'{self.path}: not written, an earlier write failed '
                            f'({one_line(self.error)})')
        if self._closed or self._writer is None:
            raise DataError(f'{self.path}: the bag is closed')

    def _fail(self, what: str, error: BaseException) -> None:
        """Record a write failure, delete the partial bag and raise it as a DataError."""
        self.error = DataError(f'{self.path}: {what} failed ({one_line(error)}); nothing was '
                               'written')
        self._abort()
        raise self.error from None

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic before writing to it (idempotent for the same type)."""
        if topic in self._connections:
            if self._types[topic] != msgtype:
                raise DataError(f'{self.path}: topic {topic!r} already has type '
                                f'{self._types[topic]}, not {msgtype}')
            return
        self._check_open()
        try:
            self._connections[topic] = self._on_owner(functools.partial(
                self._writer.add_connection, topic, msgtype, typestore=self.store))
        except (Ros1WriterError, Ros2WriterError, KeyError) as error:  # e.g. an unknown type
            raise DataError(f'{self.path}: cannot add topic {topic!r} of type {msgtype} '
                            f'({one_line(error)})') from None
        except (OSError, sqlite3.Error) as error:  # the file itself failed: the bag is lost
            self._fail(f'adding topic {topic!r} of type {msgtype}', error)
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
        self._check_open()
        try:
            self._on_owner(self._writer.write, self._connections[topic], int(log_time), raw)
        except _WRITE_ERRORS as error:
            self._fail(f'writing {topic!r}', error)
        self.counts[topic] += 1

    def close(self) -> None:
        """
        Finish the bag (index, metadata) and rename it to its final name.

        Raises the DataError of an earlier failed write, or of a failing close; either way
        nothing is left under the final name.
        """
        if self._closed:
            if self.error is not None:
                raise DataError(str(self.error)) from None
            return
        self._closed = True
        if self.error is not None:
            self._owner.shutdown()
            raise DataError(str(self.error)) from None
        writer, self._writer = self._writer, None
        try:
            self._on_owner(writer.close)
            source = self._output.temp if self.ros1 else self._bag_dir
            if self.single_file:
                produced = [p for p in self._bag_dir.iterdir() if p.name != 'metadata.yaml']
                if len(produced) != 1:
                    raise DataError(f'{self.path}: expected one storage file, got '
                                    f'{[p.name for p in produced]}')
                source = produced[0]
            self._output.publish(source)
        except (DataError,) + _WRITE_ERRORS as error:
            self._writer = writer
            self.error = DataError(f'{self.path}: closing the bag failed ({one_line(error)}); '
                                   'nothing was written')
            self._abort()
            raise self.error from None
        finally:
            self._owner.shutdown()

    def _abort(self) -> None:
        """Stop the rosbags writer without finishing the bag and delete the partial output."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                self._on_owner(writer.abort)
            except Exception:  # noqa: BLE001 - the bag is being thrown away
                pass
        self._output.discard()

    def discard(self) -> None:
        """Abandon the bag: delete everything written (the final name was never created)."""
        self._closed = True
        self._abort()
        self._owner.shutdown()
