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
``seg-perception replay``: publish a bag's camera topics with rclpy, no rosbag2 needed.

Messages go out at their recorded timing divided by ``--rate``, with sensor-data QoS (best
effort, keep last), exactly as recorded (ROS 2 CDR bytes are published as they are; ROS 1
messages are converted). ``--record`` subscribes to other topics (e.g. the node's outputs) and
writes what arrives into a bag at the same time, so ``evaluate --predictions`` can score a live
node. Large images need the shared-memory DDS profile: the shipped ``config/fastdds_shm.xml``
is applied unless ``FASTDDS_DEFAULT_PROFILES_FILE`` is already set. A truncated bag (MCAP
without footer, ROS 1 without index) is played up to the damage, then replay exits 1 with the
true count of what it published; a recording that cannot be written (a full disk) exits 1 and
leaves no file under the ``--record`` name.
"""

import argparse
import importlib
import os
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from seg_perception.core.errors import DataError, SegPerceptionError, UsageError
from seg_perception.io import bags as bagio
from seg_perception.tools.argtypes import non_negative_float, positive_float, topic_name


DEFAULT_RECORD_WAIT_S = 10.0
DEFAULT_LINGER_S = 1.0
PUBLISH_DEPTH = 5
RECORD_DEPTH = 100
SHUTDOWN_TIMEOUT_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the replay options."""
    parser.add_argument('bag', metavar='BAG', help='ROS 2 bag (dir, .mcap, .db3) or ROS 1 .bag')
    parser.add_argument('--rate', type=positive_float, default=1.0, metavar='X',
                        help='playback speed factor (2 = twice as fast; default %(default)s)')
    parser.add_argument('--loop', action='store_true', help='start over at the end, until Ctrl-C')
    parser.add_argument('--start', type=non_negative_float, default=0.0, metavar='S',
                        help='skip the first S seconds of the bag')
    parser.add_argument('--topics', nargs='+', metavar='T',
                        help='topics to publish (default: every Image, CompressedImage and '
                             'CameraInfo topic)')
    parser.add_argument('--remap', nargs='+', default=[], metavar='FROM:=TO',
                        help='publish topic FROM under the name TO')
    parser.add_argument('--reliable', action='store_true',
                        help='publish reliable instead of best effort (sensor data)')
    parser.add_argument('--record', metavar='OUT',
                        help='record --record-topics into this bag (OUT.mcap, OUT.db3 or dir)')
    parser.add_argument('--record-topics', nargs='+', default=[], metavar='T',
                        help='topics to record, e.g. /segmentation/labels')
    parser.add_argument('--wait', type=non_negative_float, metavar='S',
                        help='before playing, wait up to S seconds for the record topics to '
                             'appear and for a subscriber on a published topic (default '
                             f'{DEFAULT_RECORD_WAIT_S:g} with --record, else 0)')
    parser.add_argument('--linger', type=non_negative_float, default=DEFAULT_LINGER_S, metavar='S',
                        help='keep recording S seconds after the last message '
                             '(default %(default)s)')


def parse_remaps(pairs: Sequence[str]) -> Dict[str, str]:
    """Parse ``from:=to`` pairs; a malformed pair raises UsageError."""
    remaps = {}
    for pair in pairs:
        source, separator, target = pair.partition(':=')
        if not separator or not source or not target:
            raise UsageError(f'--remap {pair!r}: expected FROM:=TO')
        try:
            topic_name(target)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f'--remap {pair!r}: {error}') from None
        remaps[source] = target
    return remaps


def message_class(msgtype: str) -> Any:
    """Return the rclpy message class of ``pkg/msg/Type``; a missing package is a DataError."""
    package, _, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError):
        raise DataError(f'message type {msgtype}: its Python package {package} is not '
                        'installed') from None


def choose_topics(reader: Any, wanted: Optional[Sequence[str]]) -> Dict[str, str]:
    """Return {topic: msgtype} to publish; unknown topics raise DataError listing the bag's."""
    topics = reader.topics()
    if not topics:
        raise DataError(f'{reader.path}: the bag is empty (no topics)')
    if wanted:
        missing = [t for t in wanted if t not in topics]
        if missing:
            raise DataError(f'{reader.path}: topic(s) {missing} not found; '
                            f'{reader.describe_topics()}')
        return {t: topics[t].msgtype for t in wanted}
    chosen = {t.name: t.msgtype for t in topics.values()
              if t.msgtype in bagio.IMAGE_TYPES + (bagio.CAMERA_INFO,)}
    if not chosen:
        raise DataError(f'{reader.path}: no Image, CompressedImage or CameraInfo topic; name '
                        f'topics with --topics ({reader.describe_topics()})')
    return chosen


class Recorder:
    """Subscribes to topics (raw CDR) and writes every message into a bag, stamped on arrival."""

    def __init__(self, node: Any, path: str, topics: Sequence[str]) -> None:
        self.node = node
        self.path = path
        self.topics = list(topics)
        self.writer = bagio.BagWriter(path)
        self.lock = threading.Lock()
        self.subscriptions: List[Any] = []
        self.counts: Dict[str, int] = {t: 0 for t in self.topics}
        # the first write that failed: the writer deleted the bag, recording stops
        self.error: Optional[DataError] = None

    def discovered(self) -> Dict[str, Tuple[str, Any]]:
        """Return {topic: (msgtype, qos)} of the record topics that have a publisher now."""
        found = {}
        names = dict(self.node.get_topic_names_and_types())
        for topic in self.topics:
            types = names.get(topic)
            if not types:
                continue
            infos = self.node.get_publishers_info_by_topic(topic)
            if infos:
                found[topic] = (types[0], [info.qos_profile for info in infos])
        return found

    def subscribe(self, found: Dict[str, Tuple[str, Any]]) -> None:
        """Create raw subscriptions with QoS compatible with every publisher."""
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        for topic, (msgtype, offered) in found.items():
            reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
            latched = all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
            profile = QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
                reliability=(ReliabilityPolicy.RELIABLE if reliable
                             else ReliabilityPolicy.BEST_EFFORT),
                durability=(DurabilityPolicy.TRANSIENT_LOCAL if latched
                            else DurabilityPolicy.VOLATILE))
            self.writer.add_topic(topic, msgtype)

            def on_message(data: bytes, topic: str = topic, msgtype: str = msgtype) -> None:
                stamp = self.node.get_clock().now().nanoseconds
                with self.lock:
                    if self.writer is None or self.error is not None:
                        return
                    try:
                        self.writer.write_raw(topic, msgtype, stamp, data)
                    except DataError as error:
                        self.error = error
                        return
                    self.counts[topic] += 1

            self.subscriptions.append(self.node.create_subscription(
                message_class(msgtype), topic, on_message, profile, raw=True))

    def close(self, discard: bool = False) -> None:
        """Stop writing and finish the bag (or delete it: discard)."""
        with self.lock:
            writer, self.writer = self.writer, None
        if writer is None:
            return
        if discard:
            writer.discard()
            return
        try:
            writer.close()
        except DataError as error:
            self.error = self.error or error


def check_length(reader: Any, topics: Dict[str, str], start_s: float) -> None:
    """
    Refuse a bag with nothing to publish, or a --start past its end (DataError).

    A salvaged bag has no index to say how long it is: it is played up to the damage.
    """
    if reader.truncated:
        return
    counts = reader.topics()
    if not any(counts[topic].count for topic in topics):
        raise DataError(f'{reader.path}: no messages to publish on {", ".join(topics)} '
                        f'({reader.describe_topics()})')
    first, last = reader.time_bounds()
    length_s = (last - first) / 1e9
    if start_s > length_s:
        raise DataError(f'{reader.path}: --start {start_s:g} s is past the end of the bag '
                        f'({length_s:.1f} s long)')


def _wait(condition: Any, timeout: float, period: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(period)
    return True


def run(args: argparse.Namespace) -> int:
    """Publish the bag (and record); print one summary line."""
    from seg_perception.ros.dds import apply_profile

    if bool(args.record) != bool(args.record_topics):
        raise UsageError('--record OUT and --record-topics T... go together')
    if args.record and args.record.endswith('.bag'):
        raise UsageError('--record writes ROS 2 bags (OUT.mcap, OUT.db3 or a folder), not '
                         'ROS 1 .bag')
    remaps = parse_remaps(args.remap)
    wait_s = args.wait if args.wait is not None else (DEFAULT_RECORD_WAIT_S if args.record
                                                      else 0.0)
    with bagio.BagReader(args.bag) as reader:
        topics = choose_topics(reader, args.topics)
        check_length(reader, topics, args.start)
        unknown = [t for t in remaps if t not in topics]
        if unknown:
            raise DataError(f'--remap: {unknown} are not published topics; publishing '
                            f'{sorted(topics)}')
        if args.record and os.path.exists(args.record):
            raise DataError(f'{args.record}: exists already; remove it or choose another output')
        classes = {t: message_class(m) for t, m in topics.items()}
        try:
            apply_profile()  # before rclpy creates the DDS participant; the user's file wins
        except SegPerceptionError:
            pass  # no shipped profile (e.g. a partial install): Fast DDS defaults
        return _play(args, reader, topics, classes, remaps, wait_s)


def _play(args: argparse.Namespace, reader: Any, topics: Dict[str, str],
          classes: Dict[str, Any], remaps: Dict[str, str], wait_s: float) -> int:
    import rclpy
    from rclpy.exceptions import InvalidTopicNameException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy

    from seg_perception.ros.memory import keep_large_buffers

    keep_large_buffers()
    rclpy.init(args=[])  # never parse this tool's own argv as ROS arguments
    node = rclpy.create_node('seg_replay')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor,), daemon=True)
    recorder: Optional[Recorder] = None
    published = 0
    started = time.monotonic()
    error: Optional[DataError] = None
    finished = False
    try:
        profile = QoSProfile(depth=PUBLISH_DEPTH, history=qos_profile_sensor_data.history,
                             durability=qos_profile_sensor_data.durability,
                             reliability=(ReliabilityPolicy.RELIABLE if args.reliable
                                          else qos_profile_sensor_data.reliability))
        publishers = {}
        for topic in topics:
            try:
                publishers[topic] = node.create_publisher(classes[topic],
                                                          remaps.get(topic, topic), profile)
            except InvalidTopicNameException:
                raise DataError(f'{args.bag}: topic {topic!r} is not a valid ROS topic name; '
                                f'publish it under another name with --remap '
                                f'{topic!r}:=/some/name') from None
        spinner.start()
        if args.record:
            recorder = Recorder(node, args.record, args.record_topics)
            _wait(lambda: len(recorder.discovered()) == len(recorder.topics), wait_s)
            found = recorder.discovered()
            missing = [t for t in recorder.topics if t not in found]
            if missing:
                raise DataError(f'--record-topics {missing}: no publisher appeared within '
                                f'{wait_s:g} s (is the node running? topics seen: '
                                f'{sorted(dict(node.get_topic_names_and_types()))})')
            recorder.subscribe(found)
        if wait_s > 0:
            _wait(lambda: any(p.get_subscription_count() for p in publishers.values()), wait_s)
        out_store = bagio.typestore()
        while True:
            count, error = _play_once(reader, publishers, out_store, args)
            published += count
            if error is not None or not args.loop:
                break
        time.sleep(max(0.0, args.linger if recorder is not None else 0.2))
        finished = True
    except (KeyboardInterrupt, ExternalShutdownException):
        finished = True  # stopped by the user: keep what was recorded
    finally:
        executor.shutdown()  # no callback runs after this
        if spinner.is_alive():
            spinner.join(SHUTDOWN_TIMEOUT_S)
        if recorder is not None:
            # a run that failed before recording anything leaves no empty bag behind
            recorder.close(discard=not finished and not any(recorder.counts.values()))
        node.destroy_node()
        rclpy.try_shutdown()
    elapsed = time.monotonic() - started
    line = (f'replay: published {published} messages on {len(topics)} topics in '
            f'{elapsed:.1f} s (rate {args.rate:g})')
    if recorder is not None and recorder.error is not None:
        line += (f'; recording failed after {sum(recorder.counts.values())} messages, nothing '
                 f'written to {args.record}')
    elif recorder is not None:
        line += (f'; recorded {sum(recorder.counts.values())} messages ('
                 + ', '.join(f'{t} {n}' for t, n in recorder.counts.items())
                 + f') -> {args.record}')
    print(line)
    if error is None and recorder is not None:
        error = recorder.error
    if error is not None:
        raise error
    return 0


def _spin(executor: Any) -> None:
    from rclpy.executors import ExternalShutdownException
    try:
        executor.spin()
    except (ExternalShutdownException, KeyboardInterrupt):
        pass


def _play_once(reader: Any, publishers: Dict[str, Any], out_store: Any,
               args: argparse.Namespace) -> Tuple[int, Optional[bagio.BagReadError]]:
    """
    Publish the bag once at recorded timing / rate; return (messages published, read error).

    A read error (a damaged or truncated bag) ends the pass; what was published before it is
    counted, not lost with the exception.
    """
    clock_start: Optional[float] = None
    bag_start: Optional[int] = None
    count = 0
    try:
        for message in _from_start(reader, list(publishers), args.start):
            if bag_start is None:
                bag_start, clock_start = message.log_time, time.monotonic()
            due = clock_start + (message.log_time - bag_start) / 1e9 / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            publishers[message.topic].publish(reader.to_cdr(message, out_store))
            count += 1
    except bagio.BagReadError as error:
        return count, error
    return count, None


def _from_start(reader: Any, topics: List[str], start_s: float) -> Iterator[Any]:
    """
    Yield the messages from ``start_s`` seconds after the bag's first message.

    An indexed bag seeks there; a salvaged one has no index: its first message read is the
    start, and earlier messages are read and skipped.
    """
    bounds = reader.time_bounds()
    if bounds is not None:
        yield from reader.messages(topics, start_ns=bounds[0] + int(start_s * 1e9))
        return
    begin: Optional[int] = None
    for message in reader.messages(topics):
        if begin is None:
            begin = message.log_time + int(start_s * 1e9)
        if message.log_time >= begin:
            yield message
