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

One camera (``image`` in, ``~/labels``, ... out) or several (parameter ``cameras``: camera ``c``
reads ``c/image`` and publishes ``~/c/labels``, ...), always one model and one backend.

Threads: each camera's image callback has its own single-threaded executor and thread
(:class:`~seg_perception.ros.executors.SplitSpinner`); the parameter/lifecycle services and the
diagnostics timer run in the main executor. An image callback only stores its camera's newest
frame in that camera's slot (:class:`~seg_perception.ros.frame_slot.CameraSlots`); one worker
thread takes the pending frames of all cameras, decodes them, runs them through the model in one
batch and publishes each camera's outputs. A model swap (``model_path`` set at run time) loads
in the parameter service's thread while images keep arriving and the worker keeps serving with
the old model, then replaces the model reference between two batches.
"""

import array
from dataclasses import dataclass, field
import functools
import os
import re
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
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
from seg_perception.ros.camera_stream import (CAMERA_INFO_TOPIC, CameraStream,
                                              COMPRESSED_SUFFIX, INPUT_TOPIC)
from seg_perception.ros.conversions import (image_from_compressed_msg, image_from_msg,
                                            image_to_msg, stamp_ns)
from seg_perception.ros.dds import PROFILE_VARIABLE
from seg_perception.ros.diagnostics import (BatchStats, level_and_message, make_status,
                                            status_name)
from seg_perception.ros.executors import SplitSpinner
from seg_perception.ros.frame_slot import CameraSlots, SINGLE
from seg_perception.ros.logging_bridge import bridge_core_logging, unbridge_core_logging
from seg_perception.ros.memory import keep_large_buffers
from seg_perception.ros.parameters import (CAMERA_PARAMETERS, camera_names, check_choice,
                                           declare_camera_parameters, declare_node_parameters,
                                           drivable_names, load_defaults, NODE_NAME,
                                           PairedParameterService, PARAMETERS,
                                           publish_class_parameters, RuntimeSettings,
                                           unused_overrides)


GRID_TOPIC = 'drivable_grid'
# Optional outputs: topic -> the parameter that gates it. They are computed only while gated on
# and subscribed.
OPTIONAL_OUTPUTS = {'color': 'publish_color', 'overlay': 'publish_overlay',
                    'confidence': 'publish_confidence'}
OUTPUTS = ('labels', 'drivable_mask') + tuple(OPTIONAL_OUTPUTS)
# The single camera's topics, which a multi-camera node does not read: remapping one of them
# while cameras are set is a mistake (the remap would do nothing).
SINGLE_CAMERA_TOPICS = (INPUT_TOPIC, INPUT_TOPIC + COMPRESSED_SUFFIX, CAMERA_INFO_TOPIC)
# CameraInfo whose aspect ratio differs from the image's by more than this (relative) is for
# another image: scaling it would place the grid wrongly.
ASPECT_TOLERANCE = 0.02
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


@dataclass
class Job:
    """A decoded frame of one camera in the batch the worker runs."""

    stream: CameraStream
    frame: ReceivedFrame
    settings: RuntimeSettings
    wanted: Dict[str, bool]
    started: float
    timings: Dict[str, float] = field(default_factory=dict)
    labels_publish_ms: float = 0.0


class SegmentationNode(LifecycleNode):
    """Segment camera images: ``image`` (or ``c/image`` per camera) in; labels, masks out."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        """
        Declare the parameters (defaults from config/segmentation.yaml); load nothing yet.

        The parameter services are ours: one ``set_parameters`` request that sets both
        ``model_path`` and ``drivable_classes`` applies them together (see
        :class:`~seg_perception.ros.parameters.PairedParameterService`).
        """
        parameter_services = kwargs.pop('start_parameter_services', True)
        super().__init__(node_name, start_parameter_services=False, **kwargs)
        self._log_bridge = bridge_core_logging(self.get_logger())
        self._parameter_service = PairedParameterService(self) if parameter_services else None
        try:
            self._values: Dict[str, Any] = declare_node_parameters(self, load_defaults())
            self._cameras = camera_names(self._values['cameras'])
            self._camera_values = declare_camera_parameters(self, self._cameras, self._values)
            self._check_single_camera_remaps()
        except SegPerceptionError as error:  # one log line, no traceback
            self.get_logger().error(str(error))
            self.destroy_node()
            raise StartupError(str(error)) from None
        for name in unused_overrides(self):
            self.get_logger().warning(
                f'parameter {name} was given but this node has no such parameter (cameras: '
                f'{list(self._cameras) or "none, one camera on image"}); it is ignored')
        self._settings = RuntimeSettings.from_values(self._values)
        self._streams: List[CameraStream] = [
            CameraStream(name, self._transport(name) == 'compressed', self._camera_settings(
                name, self._values, self._camera_values), MutuallyExclusiveCallbackGroup())
            for name in (self._cameras or (SINGLE,))]
        self._slots: CameraSlots = CameraSlots([stream.name for stream in self._streams])
        self._batch_stats = BatchStats()
        self._segmenter: Any = None
        self._swap_lock = threading.Lock()
        self._retired_lock = threading.Lock()
        self._retired: List[Any] = []
        self._class_publisher: Any = None
        self._diagnostics_publisher: Any = None
        self._diagnostics_timer: Any = None
        self._worker: Optional[threading.Thread] = None
        self._active = False
        self._exit_timer: Any = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def destroy_node(self) -> None:
        """Stop forwarding the core's log records, then destroy the node."""
        unbridge_core_logging(self._log_bridge)
        super().destroy_node()

    def _check_single_camera_remaps(self) -> None:
        """Refuse ``cameras`` together with a remap of the single camera's topics."""
        if not self._cameras:
            return
        remapped = [f'{topic} -> {self.resolve_topic_name(topic)}'
                    for topic in SINGLE_CAMERA_TOPICS
                    if self.resolve_topic_name(topic) !=
                    self.resolve_topic_name(topic, only_expand=True)]
        if remapped:
            example = self._cameras[0]
            raise ConfigError(
                f'parameter cameras {list(self._cameras)} is set and the single-camera topics are '
                f'remapped ({", ".join(remapped)}); a multi-camera node reads <camera>/image: '
                f'remap those instead, e.g. -r {example}/image:=/sensing/camera/{example}/'
                'image_raw')

    def _transport(self, camera: str) -> str:
        values = self._camera_values.get(camera, self._values)
        return values['input_transport']

    @staticmethod
    def _camera_settings(camera: str, values: Dict[str, Any],
                         camera_values: Dict[str, Dict[str, Any]]) -> RuntimeSettings:
        """Return the settings of one camera: the node's, with the camera's own values."""
        return RuntimeSettings.from_values(dict(values, **camera_values.get(camera, {})))

    # -- properties ----------------------------------------------------------------------------
    @property
    def autostart(self) -> bool:
        """Return whether the node configures and activates itself on start."""
        return bool(self._values['autostart'])

    @property
    def input_callback_groups(self) -> List[Any]:
        """Return the callback groups to spin apart from the services (one per camera)."""
        return [stream.group for stream in self._streams]

    @property
    def input_topic(self) -> str:
        """Return the first camera's resolved input topic (``image`` after remapping)."""
        return self._input_topic(self._streams[0])

    def _input_topic(self, stream: CameraStream) -> str:
        if not stream.input_topic:
            stream.input_topic = self.resolve_topic_name(stream.image_topic)
        return stream.input_topic

    # -- model ---------------------------------------------------------------------------------
    def _load_segmenter(self, model_path: str, drivable: List[str]) -> Any:
        """
        Load and warm up a Segmenter; raise SegPerceptionError naming what is wrong.

        A torch file is refused before it is opened unless ``allow_torch_models`` is set: any DDS
        participant can set ``model_path``, and torch files can run code when they load. The
        backend learns the camera count (a TensorRT engine built from an ONNX gets a batch
        profile for it).
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
                              drivable_config=self._settings.drivable, trust_code=allow_torch,
                              max_batch=len(self._streams))
        try:
            if drivable:
                segmenter.spec.class_ids(drivable)  # SpecError lists the model's classes
            spec = segmenter.spec
            # One run at the model's own size so that the first camera frame is not a slow one,
            # as a batch of all cameras when the model takes one.
            warmup = np.zeros((spec.input_height, spec.input_width, 3), np.uint8)
            segmenter.process_batch([(warmup, 'rgb8')] * len(self._streams),
                                    drivable_classes=drivable or None)
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
        if len(self._streams) > 1:
            calls = segmenter.call_sizes(len(self._streams))
            if len(calls) > 1:
                self.get_logger().info(
                    f'{segmenter.describe().get("model_path")} runs the {len(self._streams)} '
                    f'cameras in {len(calls)} inference calls of {calls} frames (a model with a '
                    'fixed batch of 1 runs them one after another; `seg-perception export '
                    '--dynamic` makes one that takes them in one call)')
            else:
                self.get_logger().info(f'the {len(self._streams)} cameras run in one inference '
                                       'call per batch')

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
        for stream in self._streams:
            for name in OUTPUTS:
                stream.outputs[name] = self.create_lifecycle_publisher(
                    Image, stream.output(name), qos.output_qos())
            stream.outputs[GRID_TOPIC] = self.create_lifecycle_publisher(
                OccupancyGrid, stream.output(GRID_TOPIC), qos.output_qos())
        self._class_publisher = self.create_publisher(
            class_table.message_type(), class_table.TOPIC, qos.latched_qos())
        self._diagnostics_publisher = self.create_publisher(
            DiagnosticArray, '/diagnostics', qos.diagnostics_qos())
        self._announce_model(segmenter)
        self._diagnostics_timer = self.create_timer(
            self._values['diagnostics_period'], self._publish_diagnostics)
        self._slots.open()
        self._worker = threading.Thread(target=self._work, name='segmentation_worker',
                                        daemon=True)
        self._worker.start()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to every camera's input and start publishing."""
        reliability, depth = self._values['qos.reliability'], self._values['qos.depth']
        for stream in self._streams:
            stream.stats.restart_stream()  # frames sent while inactive were not lost upstream
            message_type = CompressedImage if stream.compressed else Image
            stream.subscription = self.create_subscription(
                message_type, self._input_topic(stream),
                functools.partial(self._on_image, stream),
                qos.input_qos(reliability, depth), callback_group=stream.group,
                event_callbacks=SubscriptionEventCallbacks(
                    message_lost=functools.partial(self._on_message_lost, stream)))
            stream.camera_info_subscription = self.create_subscription(
                CameraInfo, stream.relative(CAMERA_INFO_TOPIC),
                functools.partial(self._on_camera_info, stream), qos.input_qos(),
                callback_group=stream.group)
            transport = 'compressed' if stream.compressed else 'raw'
            self.get_logger().info(f'{stream.label}listening on {self._input_topic(stream)} '
                                   f'({transport}, {reliability}, depth {depth})')
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop listening; frames in flight are not published."""
        self._stop_listening()
        return super().on_deactivate(state)

    def _stop_listening(self) -> None:
        """Drop the input subscriptions and stop publishing frames still in flight."""
        self._active = False
        for stream in self._streams:
            for subscription in (stream.subscription, stream.camera_info_subscription):
                if subscription is not None:
                    self.destroy_subscription(subscription)
            stream.subscription = stream.camera_info_subscription = None

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
        for stream in self._streams:
            for publisher in stream.outputs.values():
                self.destroy_lifecycle_publisher(publisher)
            stream.outputs = {}
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
        self._slots.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    # -- parameters ----------------------------------------------------------------------------
    def _camera_updates(self, parameters: List[Parameter]) -> Dict[str, Dict[str, Any]]:
        """Return {camera: {name: value}} of the per-camera parameters in a change."""
        updates: Dict[str, Dict[str, Any]] = {}
        for parameter in parameters:
            camera, _, name = parameter.name.partition('.')
            if camera in self._camera_values and name in CAMERA_PARAMETERS:
                updates.setdefault(camera, {})[name] = parameter.value
        return updates

    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        """Validate and apply parameter changes; a model swap happens here, in the background."""
        updates = {p.name: p.value for p in parameters if p.name in PARAMETERS}
        for name, value in updates.items():
            problem = check_choice(name, value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        per_camera_given = sorted(set(updates) & set(CAMERA_PARAMETERS))
        if self._cameras and per_camera_given:
            name = per_camera_given[0]
            return SetParametersResult(
                successful=False,
                reason=f'{name}: this node has cameras {list(self._cameras)}; set {name} per '
                       f'camera, e.g. {self._cameras[0]}.{name}')
        values = dict(self._values, **updates)
        camera_values = {camera: dict(own, **self._camera_updates(parameters).get(camera, {}))
                         for camera, own in self._camera_values.items()}
        try:
            settings = RuntimeSettings.from_values(values)
            stream_settings = [self._camera_settings(stream.name, values, camera_values)
                               for stream in self._streams]
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
        self._camera_values = camera_values
        self._settings = settings
        for stream, stream_setting in zip(self._streams, stream_settings):
            stream.settings = stream_setting
            stream.stats.expected_rate = stream_setting.expected_rate
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
        self._segmenter = segmenter  # the worker picks it up at its next batch
        with self._retired_lock:
            self._retired.append(old)  # closed by the worker once it is done with it
        self._announce_model(segmenter)
        self.get_logger().info(
            f'now serving {segmenter.describe().get("model_path", model_path)} '
            f'({segmenter.spec.summary()}), loaded in {time.monotonic() - started:.2f} s')
        return ''

    # -- input ---------------------------------------------------------------------------------
    def _on_image(self, stream: CameraStream, msg: Any) -> None:
        """
        Check the frame and store it for the worker; the camera's frame still waiting is dropped.

        A raw image is validated here (a view of the message buffer, no copy, microseconds), so
        a malformed frame is counted as rejected the moment it arrives and never reaches the
        batch; a compressed image is decoded by the worker, so that frames which get dropped are
        never decoded.
        """
        received = time.perf_counter()
        stamp = msg.header.stamp
        stream.stats.frame_received(stamp.sec + stamp.nanosec * 1e-9)
        frame = ReceivedFrame(msg, received)
        if not stream.compressed:
            try:
                frame.image, frame.encoding = image_from_msg(msg, self._input_topic(stream))
            except InputError as error:
                self._reject(stream, error.reason, str(error))
                return
            frame.decode_ms = (time.perf_counter() - received) * 1e3
        self._slots.put(stream.name, frame)

    def _on_message_lost(self, stream: CameraStream, info: Any) -> None:
        """Count input samples DDS reports lost on the way (e.g. fragments that never came)."""
        stream.stats.frames_lost_in_transport(info.total_count_change)

    def _on_camera_info(self, stream: CameraStream, msg: CameraInfo) -> None:
        """Keep the intrinsics of the camera's latest CameraInfo for its drivable_grid."""
        try:
            stream.intrinsics = Intrinsics.from_k(msg.k, msg.width, msg.height)
        except InputError as error:
            self._reject(stream, error.reason,
                         f'{self.resolve_topic_name(stream.relative(CAMERA_INFO_TOPIC))}: {error}')

    def _reject(self, stream: CameraStream, reason: str, message: str) -> None:
        """Count a camera's rejected frame; log it once per reason and error_log_period."""
        stream.stats.frame_rejected(reason, message)
        now = time.monotonic()
        last = stream.last_log.get(reason)
        period = self._values['error_log_period']
        if last is None or now - last >= period:
            stream.last_log[reason] = now
            self.get_logger().error(f'{stream.label}rejected frame ({reason}): {message} '
                                    f'[further {reason} frames are counted in /diagnostics, '
                                    f'logged at most every {period:g} s]')

    # -- worker --------------------------------------------------------------------------------
    def _batch_wait_s(self) -> float:
        """Return how long a ready frame waits for the others (0 unless batching helps)."""
        segmenter = self._segmenter
        if len(self._streams) < 2 or segmenter is None or not segmenter.takes_batches:
            return 0.0
        return float(self._values['batch_timeout_ms']) / 1e3

    def _work(self) -> None:
        """Process the newest frame of every camera that has one, forever, until closed."""
        streams = {stream.name: stream for stream in self._streams}
        while True:
            segmenter = self._segmenter
            # a model that runs frames one at a time gets one per cycle, the cameras in turn, so
            # that no camera's frame waits behind the others' inferences
            one_at_a_time = segmenter is not None and not segmenter.takes_batches
            batch = self._slots.take_batch(self._batch_wait_s(),
                                           max_items=1 if one_at_a_time else None)
            self._close_retired()
            if batch is None:
                return
            try:
                self._process([(streams[name], frame) for name, frame in batch])
            except Exception as error:  # noqa: BLE001 - the worker must survive any frame
                if not self.context.ok():
                    return  # shutting down (Ctrl-C, SIGTERM): the publishers are gone
                for name, _ in batch:
                    self._reject(streams[name], 'processing_failed',
                                 f'{type(error).__name__}: {error}')

    def _close_retired(self) -> None:
        """Close models replaced by a swap (the worker no longer uses them)."""
        with self._retired_lock:
            retired, self._retired = self._retired, []
        for segmenter in retired:
            segmenter.close()

    def _wanted(self, stream: CameraStream, settings: RuntimeSettings) -> Dict[str, bool]:
        """Return which optional outputs of a camera are enabled and subscribed right now."""
        return {name: bool(getattr(settings, gate)) and name in stream.outputs and
                stream.outputs[name].get_subscription_count() > 0
                for name, gate in OPTIONAL_OUTPUTS.items()}

    def _decode(self, stream: CameraStream, frame: ReceivedFrame) -> Optional[Job]:
        """Return the camera's frame ready for the model, or None if it was rejected."""
        started = time.perf_counter()
        job = Job(stream, frame, stream.settings, self._wanted(stream, stream.settings), started,
                  {'queue': (started - frame.received) * 1e3, 'decode': frame.decode_ms})
        if frame.image is None:
            try:
                frame.image, frame.encoding = image_from_compressed_msg(
                    frame.msg, self._input_topic(stream))
            except InputError as error:
                self._reject(stream, error.reason, str(error))
                return None
            job.timings['decode'] = (time.perf_counter() - started) * 1e3
        return job

    def _process(self, batch: List[Tuple[CameraStream, ReceivedFrame]]) -> None:
        """Decode, segment (one batch) and publish each camera's frame with its own header."""
        jobs = [job for job in (self._decode(stream, frame) for stream, frame in batch) if job]
        segmenter, settings = self._segmenter, self._settings
        if not jobs or segmenter is None:
            return
        results = self._segment(segmenter, settings, jobs)
        self._batch_stats.record(segmenter.call_sizes(len(results)) if results else [],
                                 sorted({result.timings['infer'] for _, result in results}))
        for job, result in results:
            self._publish(job, result)

    def _segment(self, segmenter: Any, settings: RuntimeSettings,
                 jobs: List[Job]) -> List[Tuple[Job, Any]]:
        """
        Run the jobs through the model in one batch; return [(job, result)] of those it took.

        Each camera's ``~/labels`` is published as soon as its label map exists. A frame the
        model refuses (InputError names it) is rejected under its own camera and the others
        run again without it, so one camera's bad frame costs the others nothing but time.
        """
        def publish_labels(index: int, labels: np.ndarray) -> None:
            job = jobs[index]
            if not self._active:
                return
            begin = time.perf_counter()
            job.stream.outputs['labels'].publish(
                image_to_msg(labels, 'mono8', job.frame.msg.header))
            job.labels_publish_ms = (time.perf_counter() - begin) * 1e3
            stamp = stamp_ns(job.frame.msg)
            if stamp > 0:
                job.timings['stamp_to_labels'] = (
                    self.get_clock().now().nanoseconds - stamp) / 1e6

        try:
            results = segmenter.process_batch(
                [(job.frame.image, job.frame.encoding) for job in jobs],
                confidence=[job.wanted['confidence'] for job in jobs],
                color=[job.wanted['color'] for job in jobs],
                overlay=[job.wanted['overlay'] for job in jobs],
                overlay_alpha=settings.overlay_alpha,
                drivable_classes=list(settings.drivable_classes) or None,
                on_labels=publish_labels)
        except SegPerceptionError as error:
            if len(jobs) > 1:  # find the frame at fault: each alone
                return [pair for job in jobs for pair in self._segment(segmenter, settings, [job])]
            reason = error.reason if isinstance(error, InputError) else 'inference_failed'
            self._reject(jobs[0].stream, reason, str(error))
            return []
        return list(zip(jobs, results))

    def _publish(self, job: Job, result: Any) -> None:
        """Publish a camera's drivable mask, optional outputs and grid; record its timings."""
        stream, header, settings, timings = job.stream, job.frame.msg.header, job.settings, \
            job.timings
        for stage, value in result.timings.items():
            if stage != 'total':
                timings[stage] = float(value)
        publish_started = time.perf_counter()
        if not self._active:
            return
        outputs = stream.outputs
        outputs['drivable_mask'].publish(image_to_msg(result.drivable, 'mono8', header))
        published = ['labels', 'drivable_mask']
        for name in OPTIONAL_OUTPUTS:
            array = getattr(result, name, None)
            if job.wanted[name] and array is not None:
                encoding_out = 'mono8' if name == 'confidence' else 'rgb8'
                # the core's confidence is already uint8 (softmax max x 255)
                outputs[name].publish(image_to_msg(array, encoding_out, header))
                published.append(name)
        if settings.publish_drivable_grid and outputs[GRID_TOPIC].get_subscription_count() > 0:
            grid_started = time.perf_counter()
            grid_msg = self._grid_message(stream, result.drivable, header, settings)
            timings['grid'] = (time.perf_counter() - grid_started) * 1e3
            if grid_msg is not None:
                outputs[GRID_TOPIC].publish(grid_msg)
                published.append(GRID_TOPIC)
        done = time.perf_counter()
        timings['publish'] = ((done - publish_started) * 1e3 + job.labels_publish_ms -
                              timings.get('grid', 0.0))
        timings['total'] = (done - job.started) * 1e3
        stamp = stamp_ns(job.frame.msg)
        if stamp > 0:
            timings['stamp_to_publish'] = (self.get_clock().now().nanoseconds - stamp) / 1e6
        stream.stats.frame_published(timings, published)

    def _grid_message(self, stream: CameraStream, mask: np.ndarray, header: Any,
                      settings: RuntimeSettings) -> Optional[OccupancyGrid]:
        """
        Project the camera's drivable mask onto its ground grid; the grid keeps the image header.

        A CameraInfo for another aspect ratio than the images is rejected (counted, logged):
        that camera's grid is not published until a matching one arrives; other cameras are
        unaffected.
        """
        height, width = mask.shape[:2]
        intrinsics = stream.intrinsics
        if intrinsics is not None and abs(intrinsics.width * height / (intrinsics.height * width)
                                          - 1.0) > ASPECT_TOLERANCE:
            self._reject(stream, 'camera_info_size_mismatch',
                         f'{self.resolve_topic_name(stream.relative(CAMERA_INFO_TOPIC))}: '
                         f'CameraInfo is for {intrinsics.width}x{intrinsics.height} but the '
                         f'images are {width}x{height} (another aspect ratio); its '
                         f'{GRID_TOPIC} is not published until a matching CameraInfo arrives')
            return None
        intrinsics = (intrinsics.scaled(width, height) if intrinsics is not None
                      else Intrinsics.from_fov(width, height, settings.horizontal_fov))
        projector = stream.projector
        if projector is None or projector.config != settings.grid or \
                projector.intrinsics != intrinsics:
            projector = stream.projector = GroundProjector(settings.grid, intrinsics)
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
    def _camera_values_of(self, stream: CameraStream) -> Dict[str, str]:
        """Return the status values of one camera: rates, counters, latencies, its input."""
        stream.stats.input_publishers(
            self.count_publishers(self._input_topic(stream))
            if stream.subscription is not None else 0)
        values = stream.stats.values(self._slots.dropped(stream.name))
        values['input_topic'] = self._input_topic(stream)
        values['input_transport'] = 'compressed' if stream.compressed else 'raw'
        return values

    def _model_values(self) -> Dict[str, str]:
        """Return the status values every node has: DDS profile, QoS, the model."""
        values = {'dds_profile': os.environ.get(PROFILE_VARIABLE, ''),
                  'qos.reliability': self._values['qos.reliability']}
        segmenter = self._segmenter
        if segmenter is not None:
            for key, value in segmenter.describe().items():
                values[key] = str(value)
            values['drivable_classes'] = str(list(self._settings.drivable_classes) or
                                             segmenter.spec.drivable_classes)
        return values

    def _camera_status(self, stream: CameraStream, values: Dict[str, str]) -> Any:
        """Return the status of one camera (level and summary from its own counters)."""
        level, message = level_and_message(values, self._active, stream.rejected_reported,
                                           stream.lost_reported)
        stream.rejected_reported = int(values['frames_rejected'])
        stream.lost_reported = int(values['frames_lost_in_transport'])
        return make_status(status_name(self.get_fully_qualified_name(), stream.name),
                           str(values.get('provider', values.get('backend', ''))), level,
                           message, values)

    def _publish_diagnostics(self) -> None:
        """
        Publish the node's status, or with cameras one status per camera and a shared one.

        The shared status has the model, batch sizes and inference time and sums up the
        cameras' warnings.
        """
        if self._diagnostics_publisher is None:
            return
        shared = self._model_values()
        if not self._cameras:
            stream = self._streams[0]
            values = self._camera_values_of(stream)
            values.update(shared)
            statuses = [self._camera_status(stream, values)]
        else:
            statuses = []
            for stream in self._streams:
                values = self._camera_values_of(stream)
                values['model_path'] = shared.get('model_path', '')
                statuses.append(self._camera_status(stream, values))
            shared.update(self._batch_stats.values())
            shared['cameras'] = ' '.join(self._cameras)
            shared['batch_timeout_ms'] = f'{float(self._values["batch_timeout_ms"]):g}'
            warned = [f'{stream.name}: {status.message}'
                      for stream, status in zip(self._streams, statuses)
                      if status.level != DiagnosticStatus.OK]
            level = DiagnosticStatus.WARN if warned or not self._active else DiagnosticStatus.OK
            message = ('inactive' if not self._active else
                       '; '.join(warned) if warned else f'ok, {len(self._streams)} cameras')
            statuses.insert(0, make_status(status_name(self.get_fully_qualified_name()),
                                           str(shared.get('provider', shared.get('backend', ''))),
                                           level, message, shared))
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = statuses
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
