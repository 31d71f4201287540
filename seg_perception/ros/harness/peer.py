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
Drive a segmentation node in another process: start it, feed it images, collect its outputs.

Used by the node tests, ``seg-perception bench node`` and the node demo. :class:`NodeProcess`
runs ``segmentation_node`` as a subprocess with a generated parameter file and the shipped DDS
profile; :class:`Peer` is a node in its own rclpy context (spun by a background thread) that
publishes camera frames and records every output message with its arrival time.
"""

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rcl_interfaces.srv import GetParameters, SetParameters
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
import yaml

from seg_perception.core.errors import SegPerceptionError
from seg_perception.ros import class_table, qos
from seg_perception.ros.conversions import compressed_to_msg, image_to_msg, stamp_ns
from seg_perception.ros.dds import apply_profile
from seg_perception.ros.diagnostics import STATUS_NAME
from seg_perception.ros.memory import keep_large_buffers
from seg_perception.ros.parameters import NODE_NAME


STOP_TIMEOUT_S = 15.0
NODE_MODULE = 'seg_perception.ros.node'  # what NodeProcess runs with python -m
# Keys added to the recorded diagnostics values for the status level and message.
STATUS_LEVEL = 'status.level'
STATUS_MESSAGE = 'status.message'


def image_array(msg: Image) -> np.ndarray:
    """Return the pixels of a packed mono8/rgb8 Image as an array (no padding expected)."""
    channels = 3 if msg.encoding in ('rgb8', 'bgr8') else 1
    data = np.frombuffer(msg.data, np.uint8)
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return data.reshape(msg.height, msg.step)[:, :msg.width * channels].reshape(shape)


class NodeProcess:
    """``segmentation_node`` in a subprocess with the given parameters; logs go to a file."""

    def __init__(self, parameters: Mapping[str, Any], name: str = NODE_NAME,
                 namespace: str = '', remappings: Iterable[Tuple[str, str]] = (),
                 log_dir: Optional[str] = None, module: str = NODE_MODULE) -> None:
        """Write the parameter file and start the node (``python -m module``; returns at once)."""
        self.name = name
        self.namespace = namespace.strip('/')
        self._own_dir = not log_dir
        self._dir = log_dir or tempfile.mkdtemp(prefix='seg_node_')
        self.params_file = os.path.join(self._dir, f'{name}_params.yaml')
        self.log_file = os.path.join(self._dir, f'{name}.log')
        with open(self.params_file, 'w', encoding='utf-8') as stream:
            yaml.safe_dump({'/**': {'ros__parameters': dict(parameters)}}, stream)
        command = [sys.executable, '-m', module, '--ros-args',
                   '--params-file', self.params_file, '-r', f'__node:={name}']
        if self.namespace:
            command += ['-r', f'__ns:=/{self.namespace}']
        for source, target in remappings:
            command += ['-r', f'{source}:={target}']
        environ = dict(os.environ)
        apply_profile(environ)
        environ['PYTHONUNBUFFERED'] = '1'
        environ.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '0')
        self._log = open(self.log_file, 'w', encoding='utf-8')
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=environ)

    @property
    def fqn(self) -> str:
        """Return the node's fully qualified name."""
        return f'/{self.namespace}/{self.name}' if self.namespace else f'/{self.name}'

    def log(self) -> str:
        """Return what the node logged so far."""
        with open(self.log_file, encoding='utf-8', errors='replace') as stream:
            return stream.read()

    def running(self) -> bool:
        """Return whether the process is still alive."""
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGINT) -> int:
        """
        Interrupt the node (SIGINT, as Ctrl-C), wait, kill if needed; return its exit code.

        A log folder this object created is removed after a clean exit and kept otherwise.
        """
        if self.running():
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._log.closed:
            self._log.close()
            if self._own_dir and self.process.returncode == 0:
                shutil.rmtree(self._dir, ignore_errors=True)
        return self.process.returncode


class Peer:
    """A camera + viewer stand-in: publishes frames, records outputs, sets node parameters."""

    def __init__(self, node_fqn: str = '/' + NODE_NAME, outputs: Iterable[str] = ('labels',),
                 compressed: bool = False, input_topic: str = 'image',
                 name: str = 'seg_peer', reliable: bool = True,
                 diagnostics: bool = True) -> None:
        """Start an rclpy context, publisher, subscribers and a spinning thread."""
        apply_profile()
        self.node_fqn = node_fqn
        self.context = Context()
        keep_large_buffers()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self._lock = threading.Lock()
        self.received: Dict[str, List[Tuple[int, Any]]] = collections.defaultdict(list)
        self.diagnostics: List[Any] = []
        self.camera_diagnostics: Dict[str, List[Any]] = collections.defaultdict(list)
        self.class_tables: List[Any] = []
        self.compressed = compressed
        publisher_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=1,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)
        self.publisher = self.node.create_publisher(
            CompressedImage if compressed else Image,
            input_topic + '/compressed' if compressed else input_topic, publisher_qos)
        self._subscriptions = []
        self._camera_info_publisher: Any = None
        for output in outputs:
            self.subscribe(output)
        if diagnostics:
            self._subscriptions.append(self.node.create_subscription(
                DiagnosticArray, '/diagnostics', self._on_diagnostics, qos.diagnostics_qos()))
        self._subscriptions.append(self.node.create_subscription(
            class_table.message_type(), f'{node_fqn}/label_info',
            lambda msg: self._append(self.class_tables, msg), qos.latched_qos()))
        self._set_client = self.node.create_client(SetParameters,
                                                   f'{node_fqn}/set_parameters')
        self._get_client = self.node.create_client(GetParameters,
                                                   f'{node_fqn}/get_parameters')
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown of the context ends the spin
            pass

    def _append(self, target: List[Any], item: Any) -> None:
        with self._lock:
            target.append(item)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        """Record the node's status; a multi-camera node's camera statuses go by camera."""
        name = f'{self.node_fqn}: {STATUS_NAME}'
        for status in msg.status:
            if status.name != name and not status.name.startswith(name + ' '):
                continue
            values = {kv.key: kv.value for kv in status.values}
            values.update({STATUS_LEVEL: int.from_bytes(status.level, 'little')
                           if isinstance(status.level, bytes) else int(status.level),
                           STATUS_MESSAGE: status.message})
            camera = status.name[len(name) + 1:]
            self._append(self.camera_diagnostics[camera] if camera else self.diagnostics,
                         values)

    def subscribe(self, output: str, msg_type: Any = Image) -> None:
        """Record the messages of one node output (``labels``, ``overlay``, ...)."""
        def on_message(msg: Any, topic: str = output) -> None:
            self._append(self.received[topic], (time.time_ns(), msg))
        self._subscriptions.append(self.node.create_subscription(
            msg_type, f'{self.node_fqn}/{output}', on_message, qos.output_qos()))

    def publish_camera_info(self, msg: Any, topic: str = 'camera_info') -> None:
        """
        Publish a sensor_msgs/CameraInfo (the publisher is made on first use).

        A new publisher waits (up to 5 s) for the node's subscription to match first: a message
        published before discovery is lost, and a test that sends one CameraInfo counts on it.
        """
        if self._camera_info_publisher is None:
            self._camera_info_publisher = self.node.create_publisher(
                CameraInfo, topic, QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                              reliability=ReliabilityPolicy.RELIABLE))
            deadline = time.monotonic() + 5.0
            while (self._camera_info_publisher.get_subscription_count() == 0
                   and time.monotonic() < deadline):
                time.sleep(0.02)
        self._camera_info_publisher.publish(msg)

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(5.0)

    # -- publishing ----------------------------------------------------------------------------
    def make_message(self, array: np.ndarray, encoding: str, stamp: Optional[int] = None,
                     frame_id: str = 'camera', fmt: str = 'jpeg') -> Any:
        """Return an Image (or CompressedImage in compressed mode) stamped now or at stamp."""
        from std_msgs.msg import Header
        header = Header(frame_id=frame_id)
        value = time.time_ns() if stamp is None else stamp
        header.stamp.sec, header.stamp.nanosec = divmod(value, 1_000_000_000)
        if self.compressed:
            return compressed_to_msg(array, encoding, fmt, header)
        return image_to_msg(array, encoding, header)

    def publish(self, msg: Any, restamp: bool = False) -> int:
        """Publish a message (restamped with now if asked); return its stamp in ns."""
        if restamp:
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(),
                                                                    1_000_000_000)
        self.publisher.publish(msg)
        return stamp_ns(msg)

    def wait_for_node(self, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
        """Wait until the node subscribes to our image topic (it is active); False if not alive."""
        wait_until(lambda: self.publisher.get_subscription_count() > 0 or not alive(), timeout)
        return alive() and self.publisher.get_subscription_count() > 0

    def wait_ready(self, probe: Any, timeout: float, output: str = 'labels',
                   period: float = 0.5, alive: Callable[[], bool] = lambda: True) -> bool:
        """
        Wait for a full round trip: publish probe (restamped) until its output comes back.

        Matching is per topic and asynchronous: the node may see our images before we see its
        outputs, so only a frame that came back proves both directions are connected. Gives up
        as soon as ``alive()`` is False (pass ``NodeProcess.running``: a node that failed to
        start exits).
        """
        deadline = time.monotonic() + timeout
        if not self.wait_for_node(timeout, alive):
            return False
        while time.monotonic() < deadline and alive():
            stamp = self.publish(probe, restamp=True)
            if self.wait_for_stamp(stamp, period, output) is not None:
                return True
        return False

    # -- results -------------------------------------------------------------------------------
    def messages(self, output: str = 'labels') -> List[Tuple[int, Any]]:
        """Return [(arrival ns, msg)] of an output received so far."""
        with self._lock:
            return list(self.received[output])

    def by_stamp(self, output: str = 'labels') -> Dict[int, Any]:
        """Return {stamp ns: msg} of an output."""
        return {stamp_ns(msg): msg for _, msg in self.messages(output)}

    def wait_for_stamp(self, stamp: int, timeout: float, output: str = 'labels') -> Any:
        """Wait for the output carrying a stamp; return it or None."""
        found: List[Any] = []

        def arrived() -> bool:
            found[:] = [m for _, m in self.messages(output) if stamp_ns(m) == stamp]
            return bool(found)
        return found[0] if wait_until(arrived, timeout) else None

    def clear(self) -> None:
        """Forget the outputs and diagnostics received so far."""
        with self._lock:
            self.received.clear()
            self.diagnostics.clear()
            self.camera_diagnostics.clear()

    def latest_camera_diagnostics(self, camera: str) -> Dict[str, str]:
        """Return the newest status of one camera of a multi-camera node ({} if none)."""
        with self._lock:
            statuses = self.camera_diagnostics.get(camera, [])
            return dict(statuses[-1]) if statuses else {}

    def latest_diagnostics(self) -> Dict[str, str]:
        """Return the key/values of the node's newest diagnostics status ({} if none)."""
        with self._lock:
            return dict(self.diagnostics[-1]) if self.diagnostics else {}

    def fresh_diagnostics(self, timeout: float) -> Dict[str, str]:
        """
        Return a diagnostics status generated after this call ({} on timeout).

        The first status to arrive may have been in flight already, so wait for the second.
        """
        with self._lock:
            seen = len(self.diagnostics)
        if not wait_until(lambda: len(self.diagnostics) >= seen + 2, timeout):
            return {}
        return self.latest_diagnostics()

    def wait_for_diagnostics(self, predicate: Callable[[Dict[str, str]], bool],
                             timeout: float) -> Dict[str, str]:
        """Wait for a diagnostics status satisfying predicate; return it ({} on timeout)."""
        result: Dict[str, str] = {}

        def check() -> bool:
            values = self.latest_diagnostics()
            if values and predicate(values):
                result.update(values)
                return True
            return False
        wait_until(check, timeout)
        return result

    # -- parameters ----------------------------------------------------------------------------
    def set_parameters(self, values: Mapping[str, Any], timeout: float = 60.0) -> List[Any]:
        """Set node parameters through its service; return the SetParametersResult list."""
        if not self._set_client.wait_for_service(timeout_sec=timeout):
            raise SegPerceptionError(f'{self.node_fqn}/set_parameters: service not available')
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg()
                              for name, value in values.items()]
        return self._call(self._set_client, request, timeout).results

    def get_parameters(self, names: Iterable[str], timeout: float = 30.0) -> Dict[str, Any]:
        """Return {name: value} of node parameters through its service."""
        if not self._get_client.wait_for_service(timeout_sec=timeout):
            raise SegPerceptionError(f'{self.node_fqn}/get_parameters: service not available')
        names = list(names)
        request = GetParameters.Request(names=names)
        response = self._call(self._get_client, request, timeout)
        return {name: Parameter.from_parameter_msg(
            _parameter_msg(name, value)).value for name, value in zip(names, response.values)}

    def _call(self, client: Any, request: Any, timeout: float) -> Any:
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise SegPerceptionError(f'{client.srv_name}: no response within {timeout:.0f} s')
        return future.result()


def _parameter_msg(name: str, value: Any) -> Any:
    from rcl_interfaces.msg import Parameter as ParameterMsg
    return ParameterMsg(name=name, value=value)


def wait_until(condition: Callable[[], bool], timeout: float, period: float = 0.02) -> bool:
    """Poll condition until it holds or timeout seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(period)
