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
SegmentationNode: a lifecycle node, a thin adapter between image topics and core.Segmenter.

Threads: the image callback has its own single-threaded executor and thread
(:class:`~seg_perception.ros.executors.SplitSpinner`); the parameter/lifecycle services and the
diagnostics timer run in the main executor. The image callback only stores the newest frame in a
one-frame slot; one worker thread decodes, segments and publishes. A model swap (``model_path``
set at run time) loads in the parameter service's thread while images keep arriving and the
worker keeps serving with the old model, then replaces the model reference between two frames.
"""

import array
from dataclasses import dataclass
import os
import re
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.logging import get_logger_effective_level, LoggingSeverity, set_logger_level
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

try:  # Iron and later
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

from seg_perception.core import Segmenter
from seg_perception.core.backends import resolve_backend_name
from seg_perception.core.errors import (ConfigError, InputError, one_line, quoted,
                                        SegPerceptionError)
from seg_perception.core.ground_grid import GroundProjector, Intrinsics
from seg_perception.ros import class_table, qos
from seg_perception.ros.conversions import image_from_compressed_msg, image_from_msg, image_to_msg
from seg_perception.ros.dds import PROFILE_VARIABLE
from seg_perception.ros.diagnostics import level_and_message, make_status, NodeStats
from seg_perception.ros.executors import SplitSpinner
from seg_perception.ros.frame_slot import LatestFrameSlot
from seg_perception.ros.memory import keep_large_buffers
from seg_perception.ros.parameters import (check_choice, declare_node_parameters, drivable_names,
                                           load_defaults, NODE_NAME, PairedParameterService,
                                           PARAMETERS, publish_class_parameters, RuntimeSettings)


INPUT_TOPIC = 'image'
CAMERA_INFO_TOPIC = 'camera_info'
GRID_TOPIC = 'drivable_grid'
COMPRESSED_SUFFIX = '/compressed'
# Optional outputs: topic -> the parameter that gates it. They are computed only while gated on
# and subscribed.
OPTIONAL_OUTPUTS = {'color': 'publish_color', 'overlay': 'publish_overlay',
                    'confidence': 'publish_confidence'}
OUTPUTS = ('labels', 'drivable_mask') + tuple(OPTIONAL_OUTPUTS)
# Exit code of a node finalized through its lifecycle (1 is a bad start-up, which a restart does
# not cure): non-zero, so that launch respawn or systemd Restart=on-failure starts it again.
EXIT_FINALIZED = 3
FINALIZED_EXIT_DELAY_S = 0.5  # lets the change_state response reach the caller first


class StartupError(SegPerceptionError):
    """A start-up parameter is invalid; the node has already logged why and is destroyed."""


class NodeFinalized(SegPerceptionError):
    """The node reached the finalized lifecycle state: it serves nothing any more, so it ends."""


@dataclass
class ReceivedFrame:
    """A received frame on its way to the worker (image is None until decoded)."""

    msg: Any
    received: float
    image: Optional[np.ndarray] = None
    encoding: str = ''
    decode_ms: float = 0.0


class SegmentationNode(LifecycleNode):
    """Segment camera images: ``image`` in; labels, drivable mask, color, overlay out."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        """
        Declare the parameters (defaults from config/segmentation.yaml); load nothing yet.

        The parameter services are ours: one ``set_parameters`` request that sets both
        ``model_path`` and ``drivable_classes`` applies them together (see
        :class:`~seg_perception.ros.parameters.PairedParameterService`).
        """
        parameter_services = kwargs.pop('start_parameter_services', True)
        super().__init__(node_name, start_parameter_services=False, **kwargs)
        self._parameter_service = PairedParameterService(self) if parameter_services else None
        try:
            self._values: Dict[str, Any] = declare_node_parameters(self, load_defaults())
        except SegPerceptionError as error:  # one log line, no traceback
            self.get_logger().error(str(error))
            self.destroy_node()
            raise StartupError(str(error)) from None
        self._settings = RuntimeSettings.from_values(self._values)
        self._stats = NodeStats()
        self._stats.expected_rate = self._settings.expected_rate
        self._slot: LatestFrameSlot = LatestFrameSlot()
        self._segmenter: Any = None
        self._swap_lock = threading.Lock()
        self._retired_lock = threading.Lock()
        self._retired: List[Any] = []
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._subscription: Any = None
        self._camera_info_subscription: Any = None
        self._intrinsics: Optional[Intrinsics] = None  # from the latest CameraInfo
        self._projector: Optional[GroundProjector] = None  # cached for one grid and camera
        self._input_topic = ''
        self._outputs: Dict[str, Any] = {}
        self._class_publisher: Any = None
        self._diagnostics_publisher: Any = None
        self._diagnostics_timer: Any = None
        self._worker: Optional[threading.Thread] = None
        self._active = False
        self._last_log: Dict[str, float] = {}
        self._rejected_reported = 0
        self._lost_reported = 0
        self._exit_timer: Any = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # -- properties ----------------------------------------------------------------------------
    @property
    def autostart(self) -> bool:
        """Return whether the node configures and activates itself on start."""
        return bool(self._values['autostart'])

    @property
    def input_callback_groups(self) -> List[Any]:
        """Return the callback groups to spin apart from the services (the image input)."""
        return [self._input_group]

    @property
    def input_topic(self) -> str:
        """Return the resolved input topic (``image`` or ``image/compressed`` after remapping)."""
        if not self._input_topic:
            base = self.resolve_topic_name(INPUT_TOPIC)
            self._input_topic = base + COMPRESSED_SUFFIX if self._compressed else base
        return self._input_topic

    @property
    def _compressed(self) -> bool:
        return self._values['input_transport'] == 'compressed'

    # -- model ---------------------------------------------------------------------------------
    def _load_segmenter(self, model_path: str, drivable: List[str]) -> Any:
        """
        Load and warm up a Segmenter; raise SegPerceptionError naming what is wrong.

        A torch file is refused before it is opened unless ``allow_torch_models`` is set: any DDS
        participant can set ``model_path``, and torch files can run code when they load.
        """
        allow_torch = self._values['allow_torch_models']
        if not allow_torch and model_path and resolve_backend_name(
                self._values['backend'], model_path) == 'torch':
            raise ConfigError(f'{quoted(model_path)}: torch model files are not loaded through '
                              'model_path unless the start-up parameter allow_torch_models is '
                              'true (they can run code when loaded); use an ONNX model or a '
                              'TensorRT engine')
        segmenter = Segmenter(model_path=model_path or None, backend=self._values['backend'],
                              device=self._values['device'],
                              precision=self._values['precision'],
                              num_threads=self._values['num_threads'],
                              engine_cache_dir=self._values['engine_cache_dir'],
                              drivable_config=self._settings.drivable, trust_code=allow_torch)
        try:
            if drivable:
                segmenter.spec.class_ids(drivable)  # SpecError lists the model's classes
            spec = segmenter.spec
            # One run at the model's own size so that the first camera frame is not a slow one.
            warmup = np.zeros((spec.input_height, spec.input_width, 3), np.uint8)
            segmenter.process(warmup, 'rgb8', drivable_classes=drivable or None)
        except BaseException:
            segmenter.close()
            raise
        return segmenter

    def _announce_model(self, segmenter: Any) -> None:
        """Publish the class parameters and the latched class table of the serving model."""
        publish_class_parameters(self, segmenter.spec)
        if self._class_publisher is not None:
            _, msg = class_table.class_table_message(
                segmenter.spec, str(segmenter.describe().get('model_path', '')),
                self.get_clock().now().to_msg())
            self._class_publisher.publish(msg)

    # -- lifecycle -----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model, create publishers, the diagnostics timer and the worker."""
        try:
            segmenter = self._load_segmenter(self._values['model_path'],
                                             list(self._settings.drivable_classes))
        except Exception as error:  # noqa: BLE001 - a failed load must not crash the node
            self.get_logger().error(f'configure failed: {one_line(error)}')
            return TransitionCallbackReturn.FAILURE
        self._segmenter = segmenter
        info = segmenter.describe()
        self.get_logger().info('model ' + ', '.join(f'{k}={v}' for k, v in info.items()))
        for name in OUTPUTS:
            self._outputs[name] = self.create_lifecycle_publisher(
                Image, f'~/{name}', qos.output_qos())
        self._outputs[GRID_TOPIC] = self.create_lifecycle_publisher(
            OccupancyGrid, f'~/{GRID_TOPIC}', qos.output_qos())
        self._class_publisher = self.create_publisher(
            class_table.message_type(), class_table.TOPIC, qos.latched_qos())
        self._diagnostics_publisher = self.create_publisher(
            DiagnosticArray, '/diagnostics', qos.diagnostics_qos())
        self._announce_model(segmenter)
        self._diagnostics_timer = self.create_timer(
            self._values['diagnostics_period'], self._publish_diagnostics)
        self._slot.open()
        self._worker = threading.Thread(target=self._work, name='segmentation_worker',
                                        daemon=True)
        self._worker.start()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the input and start publishing."""
        self._stats.restart_stream()  # frames sent while inactive were not lost upstream
        message_type = CompressedImage if self._compressed else Image
        self._subscription = self.create_subscription(
            message_type, self.input_topic, self._on_image,
            qos.input_qos(self._values['qos.reliability'], self._values['qos.depth']),
            callback_group=self._input_group,
            event_callbacks=SubscriptionEventCallbacks(message_lost=self._on_message_lost))
        self._camera_info_subscription = self.create_subscription(
            CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, qos.input_qos(),
            callback_group=self._input_group)
        self._active = True
        self.get_logger().info(
            f'listening on {self.input_topic} ({self._values["input_transport"]}, '
            f'{self._values["qos.reliability"]}, depth {self._values["qos.depth"]})')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop listening; frames in flight are not published."""
        self._stop_listening()
        return super().on_deactivate(state)

    def _stop_listening(self) -> None:
        """Drop the input subscription and stop publishing frames still in flight."""
        self._active = False
        for subscription in (self._subscription, self._camera_info_subscription):
            if subscription is not None:
                self.destroy_subscription(subscription)
        self._subscription = self._camera_info_subscription = None

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker, release publishers and the model."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """
        Release everything from any state, then end the process (exit code EXIT_FINALIZED).

        A finalized lifecycle node can never serve again, and any DDS participant may call
        ``change_state``: exiting lets a supervisor start a fresh node instead of leaving a
        process that looks alive and serves nothing. The exit waits FINALIZED_EXIT_DELAY_S so
        that the caller gets its answer.
        """
        self._stop_listening()
        self._release()
        self.get_logger().warning(
            f'finalized (lifecycle shutdown transition from {state.label}): exiting with code '
            f'{EXIT_FINALIZED} so that a supervisor starts the node again')
        self._exit_timer = self.create_timer(FINALIZED_EXIT_DELAY_S, self._exit_finalized)
        return super().on_shutdown(state)

    def _exit_finalized(self) -> None:
        """End the spin of the main executor: main() exits with EXIT_FINALIZED."""
        raise NodeFinalized('the node was finalized through its lifecycle')

    def _release(self) -> None:
        self.stop_worker()
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        for publisher in (self._class_publisher, self._diagnostics_publisher):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._class_publisher = self._diagnostics_publisher = None
        self._close_retired()
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None

    def stop_worker(self) -> None:
        """Stop the inference worker (idempotent)."""
        self._slot.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    # -- parameters ----------------------------------------------------------------------------
    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        """Validate and apply parameter changes; a model swap happens here, in the background."""
        updates = {p.name: p.value for p in parameters if p.name in PARAMETERS}
        for name, value in updates.items():
            problem = check_choice(name, value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        values = dict(self._values, **updates)
        try:
            settings = RuntimeSettings.from_values(values)
        except InputError as error:
            return SetParametersResult(successful=False, reason=str(error))
        drivable = list(drivable_names(values['drivable_classes']))
        if 'model_path' in updates and self._segmenter is not None:
            with self._swap_lock:
                reason = self._swap_model(values['model_path'], drivable)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        elif 'drivable_classes' in updates and self._segmenter is not None and drivable:
            try:
                self._segmenter.spec.class_ids(drivable)
            except SegPerceptionError as error:
                return SetParametersResult(successful=False, reason=f'drivable_classes: {error}')
        self._values = values
        self._settings = settings
        self._stats.expected_rate = self._settings.expected_rate
        segmenter = self._segmenter
        if segmenter is not None and segmenter.drivable_config != settings.drivable:
            segmenter.drivable_config = settings.drivable  # from the next frame on
        return SetParametersResult(successful=True)

    def _swap_model(self, model_path: str, drivable: List[str]) -> str:
        """Load model_path and switch to it; return the reason of a failure ('' on success)."""
        old = self._segmenter
        old_path = old.describe().get('model_path', '')
        self.get_logger().info(f'loading {model_path or "the default model"} while '
                               f'{old_path} keeps serving')
        started = time.monotonic()
        try:
            segmenter = self._load_segmenter(model_path, drivable)
        except Exception as error:  # noqa: BLE001 - any failure must leave the old model serving
            reason = (f'model_path {quoted(model_path)} rejected, still serving {old_path}: '
                      f'{one_line(error)}')
            self.get_logger().error(reason)
            return reason
        # a drivable.* change while the model loaded applies to the new model too
        segmenter.drivable_config = self._settings.drivable
        self._segmenter = segmenter  # the worker picks it up at its next frame
        with self._retired_lock:
            self._retired.append(old)  # closed by the worker once it is done with it
        self._announce_model(segmenter)
        self.get_logger().info(
            f'now serving {segmenter.describe().get("model_path", model_path)} '
            f'({segmenter.spec.summary()}), loaded in {time.monotonic() - started:.2f} s')
        return ''

    # -- input ---------------------------------------------------------------------------------
    def _on_image(self, msg: Any) -> None:
        """
        Check the frame and store it for the worker; a frame still waiting is dropped.

        A raw image is validated here (a view of the message buffer, no copy, microseconds), so
        a malformed frame is counted as rejected the moment it arrives; a compressed image is
        decoded by the worker, so that frames which get dropped are never decoded.
        """
        received = time.perf_counter()
        stamp = msg.header.stamp
        self._stats.frame_received(stamp.sec + stamp.nanosec * 1e-9)
        frame = ReceivedFrame(msg, received)
        if not self._compressed:
            try:
                frame.image, frame.encoding = image_from_msg(msg, self.input_topic)
            except InputError as error:
                self._reject(error.reason, str(error))
                return
            frame.decode_ms = (time.perf_counter() - received) * 1e3
        self._slot.put(frame)

    def _on_message_lost(self, info: Any) -> None:
        """Count input samples DDS reports lost on the way (e.g. fragments that never came)."""
        self._stats.frames_lost_in_transport(info.total_count_change)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the intrinsics of the latest CameraInfo for ~/drivable_grid."""
        try:
            self._intrinsics = Intrinsics.from_k(msg.k, msg.width, msg.height)
        except InputError as error:
            self._reject(error.reason, f'{self.resolve_topic_name(CAMERA_INFO_TOPIC)}: {error}')

    def _reject(self, reason: str, message: str) -> None:
        """Count a rejected frame; log it once per reason and error_log_period."""
        self._stats.frame_rejected(reason, message)
        now = time.monotonic()
        last = self._last_log.get(reason)
        period = self._values['error_log_period']
        if last is None or now - last >= period:
            self._last_log[reason] = now
            self.get_logger().error(f'rejected frame ({reason}): {message} '
                                    f'[further {reason} frames are counted in /diagnostics, '
                                    f'logged at most every {period:g} s]')

    # -- worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        """Process the newest frame, forever, until the slot is closed."""
        while True:
            frame = self._slot.take()
            self._close_retired()
            if frame is None:
                return
            try:
                self._process(frame)
            except Exception as error:  # noqa: BLE001 - the worker must survive any frame
                if not self.context.ok():
                    return  # shutting down (Ctrl-C, SIGTERM): the publishers are gone
                self._reject('processing_failed', f'{type(error).__name__}: {error}')

    def _close_retired(self) -> None:
        """Close models replaced by a swap (the worker no longer uses them)."""
        with self._retired_lock:
            retired, self._retired = self._retired, []
        for segmenter in retired:
            segmenter.close()

    def _wanted(self, settings: RuntimeSettings) -> Dict[str, bool]:
        """Return which optional outputs are enabled and subscribed right now."""
        return {name: bool(getattr(settings, gate)) and name in self._outputs and
                self._outputs[name].get_subscription_count() > 0
                for name, gate in OPTIONAL_OUTPUTS.items()}

    def _process(self, frame: ReceivedFrame) -> None:
        """Decode (compressed input), segment and publish one frame with the input's header."""
        started = time.perf_counter()
        timings = {'queue': (started - frame.received) * 1e3, 'decode': frame.decode_ms}
        msg, image, encoding = frame.msg, frame.image, frame.encoding
        if image is None:
            try:
                image, encoding = image_from_compressed_msg(msg, self.input_topic)
            except InputError as error:
                self._reject(error.reason, str(error))
                return
            timings['decode'] = (time.perf_counter() - started) * 1e3
        segmenter, settings = self._segmenter, self._settings
        if segmenter is None:
            return
        wanted = self._wanted(settings)
        header = msg.header
        stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        labels_publish_ms = [0.0]

        def publish_labels(labels: np.ndarray) -> None:
            """Publish ~/labels before the drivable mask and colors are made."""
            if self._active:
                begin = time.perf_counter()
                self._outputs['labels'].publish(image_to_msg(labels, 'mono8', header))
                labels_publish_ms[0] = (time.perf_counter() - begin) * 1e3
                if stamp_ns > 0:
                    timings['stamp_to_labels'] = (
                        self.get_clock().now().nanoseconds - stamp_ns) / 1e6

        try:
            result = segmenter.process(
                image, encoding, confidence=wanted['confidence'], color=wanted['color'],
                overlay=wanted['overlay'], overlay_alpha=settings.overlay_alpha,
                drivable_classes=list(settings.drivable_classes) or None,
                on_labels=publish_labels)
        except InputError as error:
            self._reject(error.reason, str(error))
            return
        except SegPerceptionError as error:
            self._reject('inference_failed', str(error))
            return
        for stage, value in result.timings.items():
            if stage != 'total':
                timings[stage] = float(value)
        publish_started = time.perf_counter()
        if not self._active:
            return
        self._outputs['drivable_mask'].publish(image_to_msg(result.drivable, 'mono8', header))
        published = ['labels', 'drivable_mask']
        for name in OPTIONAL_OUTPUTS:
            array = getattr(result, name, None)
            if wanted[name] and array is not None:
                encoding_out = 'mono8' if name == 'confidence' else 'rgb8'
                # the core's confidence is already uint8 (softmax max x 255)
                self._outputs[name].publish(image_to_msg(array, encoding_out, header))
                published.append(name)
        if settings.publish_drivable_grid and \
                self._outputs[GRID_TOPIC].get_subscription_count() > 0:
            grid_started = time.perf_counter()
            grid_msg = self._grid_message(result.drivable, header, settings)
            timings['grid'] = (time.perf_counter() - grid_started) * 1e3
            self._outputs[GRID_TOPIC].publish(grid_msg)
            published.append(GRID_TOPIC)
        done = time.perf_counter()
        timings['publish'] = ((done - publish_started) * 1e3 + labels_publish_ms[0] -
                              timings.get('grid', 0.0))
        timings['total'] = (done - started) * 1e3
        now_ns = self.get_clock().now().nanoseconds
        if stamp_ns > 0:
            timings['stamp_to_publish'] = (now_ns - stamp_ns) / 1e6
        self._stats.frame_published(timings, published)

    def _grid_message(self, mask: np.ndarray, header: Any,
                      settings: RuntimeSettings) -> OccupancyGrid:
        """Project the drivable mask onto the ground grid; the grid keeps the image header."""
        height, width = mask.shape[:2]
        intrinsics = (self._intrinsics.scaled(width, height) if self._intrinsics is not None
                      else Intrinsics.from_fov(width, height, settings.horizontal_fov))
        projector = self._projector
        if projector is None or projector.config != settings.grid or \
                projector.intrinsics != intrinsics:
            projector = self._projector = GroundProjector(settings.grid, intrinsics)
        grid = projector.project(mask)
        msg = OccupancyGrid()
        msg.header = header
        msg.info.map_load_time = header.stamp
        msg.info.resolution = float(settings.grid.resolution)
        msg.info.height, msg.info.width = int(grid.shape[0]), int(grid.shape[1])
        (x, y, z), (qx, qy, qz, qw) = projector.origin_in_camera()
        msg.info.origin.position.x, msg.info.origin.position.y = x, y
        msg.info.origin.position.z = z
        orientation = msg.info.origin.orientation
        orientation.x, orientation.y, orientation.z, orientation.w = qx, qy, qz, qw
        msg.data = array.array('b', grid.tobytes())
        return msg

    # -- diagnostics ---------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        """Publish one DiagnosticStatus with rates, counters, latencies and the model."""
        if self._diagnostics_publisher is None:
            return
        self._stats.input_publishers(
            self.count_publishers(self.input_topic) if self._subscription is not None else 0)
        values = self._stats.values(self._slot.dropped)
        values['input_topic'] = self.input_topic
        values['dds_profile'] = os.environ.get(PROFILE_VARIABLE, '')
        values['input_transport'] = self._values['input_transport']
        values['qos.reliability'] = self._values['qos.reliability']
        segmenter = self._segmenter
        if segmenter is not None:
            for key, value in segmenter.describe().items():
                values[key] = str(value)
            values['drivable_classes'] = str(list(self._settings.drivable_classes) or
                                             segmenter.spec.drivable_classes)
        rejected = int(values['frames_rejected'])
        lost = int(values['frames_lost_in_transport'])
        level, message = level_and_message(values, self._active, self._rejected_reported,
                                           self._lost_reported)
        self._rejected_reported, self._lost_reported = rejected, lost
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [make_status(f'{self.get_fully_qualified_name()}: segmentation',
                                  str(values.get('provider', values.get('backend', ''))),
                                  level, message, values)]
        self._diagnostics_publisher.publish(msg)


def init_error_message(error: Exception) -> str:
    """Return an rclpy.init failure (bad --ros-args, params file) as one line, no C sources."""
    message = re.sub(r',? at [^,]*:\d+', '', str(error)).replace('failed to initialize rcl: ', '')
    return ' '.join(message.split())


def main(args: Optional[List[str]] = None) -> int:
    """Run the node until shutdown; exit 1 on bad arguments or parameters or a failed autostart."""
    keep_large_buffers()
    # rcl logs a bare 'Failed to parse global arguments' before it raises; the one line below
    # says what is wrong, so rcl is quiet during init (unless --log-level set it). Humble's rclpy
    # has no get_logger_level, so the level goes back to unset (inherit) afterwards.
    set_logger_level('rcl', LoggingSeverity.FATAL)
    try:
        rclpy.init(args=args)
    except _rclpy.RCLError as error:  # no logger yet: a missing or broken params file, bad -p
        print(f'segmentation_node: error: {init_error_message(error)}', file=sys.stderr)
        return 1
    finally:
        if get_logger_effective_level('rcl') == LoggingSeverity.FATAL:
            set_logger_level('rcl', LoggingSeverity.UNSET)
    node: Optional[SegmentationNode] = None
    code = 0
    try:
        node = SegmentationNode()
        spinner = SplitSpinner(node, node.input_callback_groups)
        if node.autostart and (
                node.trigger_configure() != TransitionCallbackReturn.SUCCESS or
                node.trigger_activate() != TransitionCallbackReturn.SUCCESS):
            code = 1
        else:
            spinner.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        if rclpy.ok():
            raise
        # SIGTERM shuts the context down without raising: whatever rclpy did next (wait on the
        # executor, publish the class parameters of a swap) fails on the dead context. Clean.
    except StartupError:
        code = 1
    except NodeFinalized:
        code = EXIT_FINALIZED
    except SegPerceptionError as error:
        print(f'segmentation_node: error: {error}', file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.stop_worker()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
