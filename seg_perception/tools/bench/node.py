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
``seg-perception bench node``: camera stamp -> ``~/labels`` latency through the node over DDS.

The node runs in its own process (``segmentation_node``); this process is the camera and the
viewer: it publishes real CamVid frames scaled to 1280x720 rgb8 at 30 Hz with the shipped DDS
profile and records when each ``~/labels`` message arrives. The same model is first timed alone
(the backend's ``infer`` only, in this process, before the node starts), so the ratios say what
the node and DDS add: targets p50 <= 1.15 x inference and p99 <= 1.5 x p50. Afterwards the same
frames go through a model-free echo process (:mod:`seg_perception.ros.harness.echo`), which
answers each frame with a same-size mono8 ``~/labels``: its latency is what DDS and rclpy alone
cost. The deprecated spelling prefixed the options with ``--node-`` (``bench --node
--node-size WxH``).

With ``--cameras N`` (N >= 2) one node serves N cameras (parameter ``cameras``: cam0, cam1,
...) with one model, as on a robot with several cameras: each camera is its own peer (own rclpy
context and publisher) and thread, free-running at ``--rate`` with staggered phases (camera k
starts k / (N x rate) s later), so frames arrive spread out as unsynchronized cameras send them;
``--synchronized`` publishes all cameras on one trigger with one stamp instead, the case batching
is for. Each camera's latency is measured at its peer; the node's shared status gives the batch
sizes and the inference-call time. The echo process serves one camera only, so the transport
floor is measured for N = 1 only.
"""

import argparse
import json
import os
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from seg_perception.core import Segmenter
from seg_perception.core.errors import DataError, SegPerceptionError, UsageError
from seg_perception.core.resources import sample_dir
from seg_perception.io.images import list_images, read_rgb
from seg_perception.tools.argtypes import non_negative_int, positive_float, positive_int, within
from seg_perception.tools.bench.core import parse_size


P50_TARGET = 1.15  # p50 latency / model-only inference
P99_TARGET = 1.5  # p99 latency / p50 latency
DEFAULT_SIZE = '1280x720'
ECHO_MODULE = 'seg_perception.ros.harness.echo'  # model-free stand-in: the transport floor
WARMUP_S = 1.0  # outputs of the first second are not counted
SHARED_KEYS = ('batch_size.mean', 'batch_size.histogram', 'inference_calls',
               'latency.inference_call.p50_ms')  # of the multi-camera node's shared status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of the node benchmark (``--node-*`` in the deprecated spelling)."""
    parser.add_argument('--model', default='', metavar='PATH',
                        help='model file (default: the bundled model)')
    parser.add_argument('--size', type=parse_size, default=DEFAULT_SIZE, metavar='WxH',
                        help=f'camera frame size, rgb8 (default {DEFAULT_SIZE})')
    parser.add_argument('--rate', type=positive_float, default=30.0, metavar='HZ',
                        help='camera rate (default 30)')
    parser.add_argument('--seconds', type=positive_float, default=10.0, metavar='S',
                        help=f'how long to stream (default 10; the first {WARMUP_S:g} s are '
                             'not counted)')
    parser.add_argument('--threads', type=non_negative_int, default=0, metavar='N',
                        help='inference threads of the node and of the model-only run '
                             '(0 = backend default)')
    parser.add_argument('--backend', default='auto', help='node backend (default auto)')
    parser.add_argument('--timeout', type=positive_float, default=120.0, metavar='S',
                        help='how long to wait for the node to start (default 120)')
    parser.add_argument('--no-transport-floor', action='store_true',
                        help='skip the model-free echo run that measures what DDS alone costs')
    parser.add_argument('--cameras', type=positive_int, default=1, metavar='N',
                        help='cameras served by one node (default 1: the single-camera node on '
                             'image; N >= 2: parameter cameras [cam0, ...], each camera '
                             'publishing at --rate from its own thread, free-running with '
                             'staggered phases)')
    parser.add_argument('--synchronized', action='store_true',
                        help='with --cameras >= 2: publish all cameras on one common trigger '
                             '(one stamp per tick) instead of free-running')
    parser.add_argument('--batch-timeout-ms', type=within(0.0, 1000.0), default=None,
                        metavar='MS', help="the node's batch_timeout_ms (default: the node's, "
                                           '10)')


def camera_frames(height: int, width: int) -> List[Any]:
    """Return the bundled CamVid frames (RGB) resized to the camera size."""
    folder = sample_dir('images')
    if folder is None:
        raise DataError('no CamVid sample frames are installed (data/samples/camvid/images) to '
                        'use as camera frames')
    return [cv2.resize(read_rgb(path), (width, height), interpolation=cv2.INTER_LINEAR)
            for path in list_images(folder, 'sample images')]


def model_only(model: str, frame: Any, args: argparse.Namespace) -> Dict[str, Any]:
    """Time the backend's inference alone on one frame; return medians in ms and the model."""
    with Segmenter(model or None, backend=args.backend,
                   num_threads=args.threads) as segmenter:
        infer, total = [], []
        for run in range(args.warmup + args.repeats):
            timings = segmenter.process(frame, 'rgb8').timings
            if run >= args.warmup:
                infer.append(timings['infer'])
                total.append(timings['total'])
        info = segmenter.describe()
    return {'infer_ms': float(np.median(infer)), 'core_total_ms': float(np.median(total)),
            'model_path': info['model_path'], 'backend': info['backend'],
            'provider': info['provider'], 'spec': info['spec']}


def stream(peer: Any, messages: List[Any], rate: float, seconds: float) -> Dict[int, float]:
    """Publish messages round-robin at rate for seconds; return {stamp ns: send time}."""
    sent: Dict[int, float] = {}
    period = 1.0 / rate
    started = next_time = time.monotonic()
    index = 0
    while time.monotonic() - started < seconds:
        stamp = peer.publish(messages[index % len(messages)], restamp=True)
        sent[stamp] = time.monotonic() - started
        index += 1
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    return sent


def stream_through(node: Any, frames: List[Any], args: argparse.Namespace
                   ) -> Tuple[List[float], int, Dict[str, str]]:
    """Stream the camera frames through a node process; return latencies, frames, diagnostics."""
    from seg_perception.ros.harness.peer import Peer, stamp_ns

    peer = Peer(node.fqn, outputs=('labels',), name='bench_camera')
    try:
        messages = [peer.make_message(rgb, 'rgb8', frame_id='bench') for rgb in frames]
        if not peer.wait_ready(messages[0], args.timeout, alive=node.running):
            raise SegPerceptionError(f'{node.fqn}: no ~/labels within {args.timeout:.0f} s; '
                                     'node log: ' + ' | '.join(node.log().splitlines()[-3:]))
        peer.clear()
        sent: Dict[int, float] = {}
        sender = threading.Thread(target=lambda: sent.update(
            stream(peer, messages, args.rate, args.seconds)))
        sender.start()
        sender.join()
        time.sleep(1.0)  # the last frames come back
        received = peer.messages('labels')
        diagnostics = peer.latest_diagnostics()
    finally:
        peer.close()
        node.stop()
    latencies = [(arrival - stamp_ns(msg)) / 1e6 for arrival, msg in received
                 if sent.get(stamp_ns(msg), -1.0) >= WARMUP_S]
    counted = sum(1 for offset in sent.values() if offset >= WARMUP_S)
    if not latencies:
        raise SegPerceptionError(f'{node.fqn}: no ~/labels came back during the run')
    return latencies, counted, diagnostics


def camera_names(count: int) -> List[str]:
    """Return the camera names of a multi-camera run (cam0, cam1, ...)."""
    return [f'cam{index}' for index in range(count)]


def free_running(peer: Any, messages: List[Any], args: argparse.Namespace,
                 phase: float) -> Dict[int, float]:
    """Stream one camera on its own clock after phase seconds; return {stamp ns: send time}."""
    time.sleep(phase)
    return stream(peer, messages, args.rate, args.seconds)


def trigger(peers: Dict[str, Any], messages: Dict[str, List[Any]], rate: float,
            seconds: float) -> Dict[str, Dict[int, float]]:
    """Publish one frame per camera with one stamp per tick; return {camera: {stamp: time}}."""
    sent: Dict[str, Dict[int, float]] = {name: {} for name in peers}
    period = 1.0 / rate
    started = next_time = time.monotonic()
    index = 0
    while time.monotonic() - started < seconds:
        stamp = time.time_ns()
        offset = time.monotonic() - started
        for name, peer in peers.items():
            msg = messages[name][index % len(messages[name])]
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            sent[name][peer.publish(msg)] = offset
        index += 1
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    return sent


def stream_cameras(node: Any, frames: List[Any], args: argparse.Namespace
                   ) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, str]]:
    """
    Stream N cameras through one node, one peer each; return per-camera figures and shared.

    Every camera has its own rclpy context (its own DDS participant and publisher), as separate
    camera drivers would; only the first peer listens to /diagnostics, which it reads by camera.
    """
    from seg_perception.ros.harness.peer import Peer, stamp_ns

    names = camera_names(args.cameras)
    peers: Dict[str, Any] = {}
    try:
        for index, name in enumerate(names):
            peers[name] = Peer(node.fqn, outputs=(f'{name}/labels',), input_topic=f'{name}/image',
                               name=f'bench_{name}', diagnostics=index == 0)
        messages = {name: [peer.make_message(rgb, 'rgb8', frame_id=name) for rgb in frames]
                    for name, peer in peers.items()}
        for name, peer in peers.items():
            if not peer.wait_ready(messages[name][0], args.timeout, output=f'{name}/labels',
                                   alive=node.running):
                raise SegPerceptionError(
                    f'{node.fqn}/{name}/labels: nothing within {args.timeout:.0f} s; node log: ' +
                    ' | '.join(node.log().splitlines()[-3:]))
        for peer in peers.values():
            peer.clear()
        sent: Dict[str, Dict[int, float]] = {name: {} for name in names}

        def camera(index: int, name: str) -> None:
            phase = index / (len(names) * args.rate)
            sent[name].update(free_running(peers[name], messages[name], args, phase))

        if args.synchronized:
            senders = [threading.Thread(target=lambda: sent.update(
                trigger(peers, messages, args.rate, args.seconds)))]
        else:
            senders = [threading.Thread(target=camera, args=(index, name))
                       for index, name in enumerate(names)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        time.sleep(1.0)  # the last frames come back, and a status after them
        received = {name: peer.messages(f'{name}/labels') for name, peer in peers.items()}
        viewer = peers[names[0]]
        statuses = {name: viewer.latest_camera_diagnostics(name) for name in names}
        shared = viewer.latest_diagnostics()
    finally:
        for peer in peers.values():
            peer.close()
        node.stop()
    cameras: Dict[str, Dict[str, Any]] = {}
    for name in names:
        latencies = [(arrival - stamp_ns(msg)) / 1e6 for arrival, msg in received[name]
                     if sent[name].get(stamp_ns(msg), -1.0) >= WARMUP_S]
        if not latencies:
            raise SegPerceptionError(f'{node.fqn}/{name}/labels: nothing came back during the '
                                     'run')
        p50, p99 = (float(v) for v in np.percentile(latencies, [50, 99]))
        status = statuses[name]
        cameras[name] = {
            'frames_sent': sum(1 for offset in sent[name].values() if offset >= WARMUP_S),
            'frames_received': len(latencies), 'latency_p50_ms': p50, 'latency_p99_ms': p99,
            'node_dropped_busy': int(status.get('frames_dropped_busy', 0)),
            'node_stage_p50_ms': {key[len('latency.'):-len('.p50_ms')]: float(value)
                                  for key, value in status.items()
                                  if key.startswith('latency.') and key.endswith('.p50_ms')}}
    return cameras, {key: shared.get(key, '') for key in SHARED_KEYS}


def measure_cameras(args: argparse.Namespace, frames: List[Any], alone: Dict[str, Any],
                    profile: str) -> Dict[str, Any]:
    """Run the multi-camera node; return per-camera and total figures (no transport floor)."""
    from seg_perception.ros.harness.peer import NodeProcess

    height, width = args.size
    node = NodeProcess(node_parameters(args, alone['model_path'], camera_names(args.cameras)),
                       name='segmentation_bench')
    cameras, shared = stream_cameras(node, frames, args)
    for figures in cameras.values():
        figures['p50_over_inference'] = figures['latency_p50_ms'] / alone['infer_ms']
    counted_s = args.seconds - WARMUP_S
    sent = sum(figures['frames_sent'] for figures in cameras.values())
    served = sum(figures['frames_received'] for figures in cameras.values())
    return {'camera': [height, width], 'cameras': args.cameras,
            'synchronized': args.synchronized, 'rate_hz': args.rate, 'seconds': args.seconds,
            'batch_timeout_ms': args.batch_timeout_ms, 'dds_profile': profile, 'model': alone,
            'per_camera': cameras, 'frames_sent': sent, 'frames_received': served,
            'served_fps': served / counted_s, 'sent_fps': sent / counted_s,
            'node_shared': shared, 'transport_floor': {}, 'cpus': os.cpu_count()}


def node_parameters(args: argparse.Namespace, model_path: str,
                    cameras: Optional[List[str]] = None) -> Dict[str, Any]:
    """Return the node's parameters: the model options, and cameras when there are several."""
    parameters: Dict[str, Any] = {'model_path': model_path, 'backend': args.backend,
                                  'num_threads': args.threads}
    if cameras:
        parameters['cameras'] = cameras
    if args.batch_timeout_ms is not None:
        parameters['batch_timeout_ms'] = float(args.batch_timeout_ms)
    return parameters


def measure(args: argparse.Namespace) -> Dict[str, Any]:
    """Time the model alone, then the node, then (one camera) the transport alone; return all."""
    from seg_perception.ros.dds import apply_profile
    from seg_perception.ros.harness.peer import NodeProcess

    height, width = args.size
    frames = camera_frames(height, width)
    alone = model_only(args.model, frames[0], args)
    profile = apply_profile()  # this process publishes the big frames
    if args.cameras > 1:
        return measure_cameras(args, frames, alone, profile)
    node = NodeProcess(node_parameters(args, alone['model_path']), name='segmentation_bench')
    latencies, counted, diagnostics = stream_through(node, frames, args)
    transport: Dict[str, float] = {}
    if not args.no_transport_floor:  # after the node: a run before it disturbed the node's p99
        echo_latencies, _, _ = stream_through(
            NodeProcess({}, name='segmentation_echo', module=ECHO_MODULE), frames, args)
        transport = dict(zip(('p50_ms', 'p99_ms'),
                             (float(v) for v in np.percentile(echo_latencies, [50, 99]))))
    p50, p99 = (float(v) for v in np.percentile(latencies, [50, 99]))
    node_stages, node_stages_p99 = ({key[len('latency.'):-len(suffix)]: float(value)
                                     for key, value in diagnostics.items()
                                     if key.startswith('latency.') and key.endswith(suffix)}
                                    for suffix in ('.p50_ms', '.p99_ms'))
    return {'camera': [height, width], 'rate_hz': args.rate, 'seconds': args.seconds,
            'dds_profile': profile, 'model': alone, 'frames_sent': counted,
            'frames_received': len(latencies), 'latency_p50_ms': p50, 'latency_p99_ms': p99,
            'p50_over_inference': p50 / alone['infer_ms'], 'p99_over_p50': p99 / p50,
            'node_stage_p50_ms': node_stages, 'node_stage_p99_ms': node_stages_p99,
            'node_dropped_busy': int(diagnostics.get('frames_dropped_busy', 0)),
            'transport_floor': transport, 'cpus': os.cpu_count()}


def run(args: argparse.Namespace) -> int:
    """Run the node benchmark, print the figures and the ratios, optionally write JSON."""
    if args.seconds <= WARMUP_S:
        raise UsageError(f'--seconds {args.seconds:g}: must be > {WARMUP_S:g} (the warm-up is '
                         'not counted)')
    if args.synchronized and args.cameras < 2:
        raise UsageError('--synchronized: needs --cameras 2 or more (it triggers the cameras '
                         'together)')
    result = measure(args)
    if args.cameras > 1:
        print_cameras(result, args)
    else:
        print_camera(result, args)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream_out:
            json.dump(result, stream_out, indent=2)
    return 0


def print_model(result: Dict[str, Any], args: argparse.Namespace) -> None:
    """Print the model and its model-only inference time (the baseline of the ratios)."""
    model = result['model']
    print(f'model: {model["model_path"]} ({model["spec"]}), {model["backend"]} '
          f'{model["provider"]}')
    print(f'model-only inference (median of {args.repeats}): {model["infer_ms"]:.2f} ms '
          f'(whole core call {model["core_total_ms"]:.2f} ms)')


def print_cameras(result: Dict[str, Any], args: argparse.Namespace) -> None:
    """Print a multi-camera run: per camera latency and served/sent, totals, shared status."""
    height, width = result['camera']
    timing = ('synchronized: one trigger, one stamp per tick' if result['synchronized'] else
              'free-running, staggered phases')
    timeout = ('node default' if result['batch_timeout_ms'] is None
               else f'{result["batch_timeout_ms"]:g} ms')
    print(f'node benchmark: {result["cameras"]} cameras, one node, {width}x{height} rgb8 at '
          f'{result["rate_hz"]:g} Hz each ({timing}) for {result["seconds"]:g} s, '
          f'batch_timeout_ms {timeout}, {result["cpus"]} CPUs, DDS profile '
          f'{result["dds_profile"]}')
    print_model(result, args)
    for name, figures in result['per_camera'].items():
        print(f'camera {name}: stamp -> ~/{name}/labels received: p50 '
              f'{figures["latency_p50_ms"]:.2f} ms, p99 {figures["latency_p99_ms"]:.2f} ms, '
              f'p50 / inference {figures["p50_over_inference"]:.2f}; served '
              f'{figures["frames_received"]} of {figures["frames_sent"]} frames (node dropped '
              f'{figures["node_dropped_busy"]} while busy)')
    print(f'total: {result["served_fps"]:.1f} frames/s served of {result["sent_fps"]:.1f} sent '
          f'({result["frames_received"]} of {result["frames_sent"]} frames after a '
          f'{WARMUP_S:g} s warm-up)')
    shared = result['node_shared']
    print('node shared status at the end (since the node started): ' +
          ', '.join(f'{key} {shared[key] or "-"}' for key in SHARED_KEYS))
    print(f'transport floor: skipped for --cameras {result["cameras"]} (the echo process '
          'serves one camera; run --cameras 1 for it)')


def print_camera(result: Dict[str, Any], args: argparse.Namespace) -> None:
    """Print a single-camera run: latency, node stages, transport floor, target ratios."""
    model = result['model']
    height, width = result['camera']
    print(f'node benchmark: {width}x{height} rgb8 at {result["rate_hz"]:g} Hz for '
          f'{result["seconds"]:g} s, {result["cpus"]} CPUs, DDS profile {result["dds_profile"]}')
    print_model(result, args)
    print(f'camera stamp -> ~/labels received: p50 {result["latency_p50_ms"]:.2f} ms, '
          f'p99 {result["latency_p99_ms"]:.2f} ms ({result["frames_received"]} of '
          f'{result["frames_sent"]} frames after a {WARMUP_S:g} s warm-up; node dropped '
          f'{result["node_dropped_busy"]} while busy)')
    stages = result['node_stage_p50_ms']
    print('node stages p50 ms (from /diagnostics): ' +
          ', '.join(f'{k} {v:.2f}' for k, v in stages.items()))
    print('node stages p99 ms: ' + ', '.join(
        f'{k} {v:.2f}' for k, v in result['node_stage_p99_ms'].items()))
    if {'stamp_to_publish', 'stamp_to_labels', 'total', 'queue'} <= set(stages):
        into_node = stages['stamp_to_publish'] - stages['total'] - stages['queue']
        to_labels = stages['stamp_to_labels'] - into_node - stages['queue']
        back = result['latency_p50_ms'] - stages['stamp_to_labels']
        print(f'where the p50 goes (medians, approximate): camera -> node callback (DDS) '
              f'{into_node:.1f} ms, waiting for the worker {stages["queue"]:.1f} ms, node '
              f'processing until ~/labels is published {to_labels:.1f} ms (infer '
              f'{stages.get("infer", 0.0):.1f}), node -> viewer (DDS) {back:.1f} ms')
    floor = result['transport_floor']
    if floor:
        beyond = result['latency_p50_ms'] - floor['p50_ms']
        print(f'transport floor (model-free echo process, same frames and QoS): camera stamp -> '
              f'~/labels p50 {floor["p50_ms"]:.2f} ms, p99 {floor["p99_ms"]:.2f} ms; the node\'s '
              f'p50 minus this floor = {beyond:.2f} ms, {beyond - model["infer_ms"]:+.2f} ms '
              'beyond model-only inference')
    ratio50, ratio99 = result['p50_over_inference'], result['p99_over_p50']
    print(f'p50 / inference = {ratio50:.2f} (target <= {P50_TARGET}: '
          f'{"met" if ratio50 <= P50_TARGET else "NOT met"}); p99 / p50 = {ratio99:.2f} '
          f'(target <= {P99_TARGET}: {"met" if ratio99 <= P99_TARGET else "NOT met"})')
