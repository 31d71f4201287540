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

"""The node's plain-Python parts without DDS: frame slot, statistics, parameter file, messages."""

import json
import threading
import time

import numpy as np
import pytest
from std_msgs.msg import Header

from seg_perception.core.errors import ConfigError, InputError
from seg_perception.core.spec import load_class_table, ModelSpec
from seg_perception.ros.class_table import class_table_json
from seg_perception.ros.conversions import image_from_msg, image_to_msg
from seg_perception.ros.diagnostics import level_and_message, NodeStats
from seg_perception.ros.frame_slot import CameraSlots, LIVE_PERIODS, SINGLE
from seg_perception.ros.parameters import (check_choice, drivable_names, load_defaults,
                                           PARAMETERS, RuntimeSettings)
from seg_perception.ros.qos import input_qos, profile


def test_slot_keeps_the_newest_frame_and_counts_replaced_ones():
    """Put three frames before a take: the worker gets the third, two are dropped."""
    slots = CameraSlots()
    assert slots.put(SINGLE, 'a') is False
    assert slots.put(SINGLE, 'b') is True
    assert slots.put(SINGLE, 'c') is True
    assert slots.take_batch(timeout=0.1) == [(SINGLE, 'c')] and slots.dropped() == 2
    assert slots.take_batch(timeout=0.01) is None  # nothing pending: times out


def test_slot_close_wakes_a_waiting_worker():
    """A worker blocked in take_batch() returns None when the slots close."""
    slots = CameraSlots()
    results = []
    worker = threading.Thread(target=lambda: results.append(slots.take_batch()))
    worker.start()
    slots.close()
    worker.join(5)
    assert results == [None] and not worker.is_alive()
    slots.open()
    slots.put(SINGLE, 'x')
    assert slots.take_batch(timeout=0.1) == [(SINGLE, 'x')]


def test_camera_slots_drop_per_camera_and_batch_in_camera_order():
    """Each camera keeps its newest frame; a batch has one frame per camera, in list order."""
    slots = CameraSlots(['front', 'left', 'right'])
    slots.put('right', 'r1')
    slots.put('front', 'f1')
    slots.put('front', 'f2')
    assert slots.take_batch(timeout=0.1) == [('front', 'f2'), ('right', 'r1')]
    assert (slots.dropped('front'), slots.dropped('left'), slots.dropped('right')) == (1, 0, 0)


def test_camera_slots_serve_one_at_a_time_in_turn():
    """With max_items=1 the least recently served camera goes first: round robin."""
    slots = CameraSlots(['a', 'b', 'c'])
    taken = []
    for _ in range(6):
        for name in 'abc':
            slots.put(name, name)
        taken.append(slots.take_batch(timeout=0.1, max_items=1)[0][0])
    assert taken == ['a', 'b', 'c', 'a', 'b', 'c']
    assert slots.dropped('a') == 3  # a's frame was replaced while b and c were served
    assert [name for name, _ in slots.take_batch(timeout=0.1)] == ['a', 'b']  # c just served


def test_camera_slots_wait_for_streaming_cameras_only():
    """
    A ready frame waits (up to the timeout) for a streaming camera, not for a silent one.

    Clock-driven: 'a' and 'b' stream every 100 ms; 'c' sent two frames long ago and stopped.
    """
    now = [0.0]
    slots = CameraSlots(['a', 'b', 'c'], clock=lambda: now[0])
    slots.put('c', 'c0')
    now[0] = 0.1
    slots.put('c', 'c1')
    assert slots.take_batch(timeout=0.1) == [('c', 'c1')]
    for step in range(3):
        now[0] = 10.0 + step * 0.1
        slots.put('a', f'a{step}')
        slots.put('b', f'b{step}')
    assert slots.take_batch(timeout=0.1) == [('a', 'a2'), ('b', 'b2')]
    # 'a' is ready, 'b' streams and is due: a take waits for it; 'c' (silent for 10 s) is not
    # waited for. The clock does not move, so the wait ends when 'b' arrives from a thread.
    now[0] = 10.25
    slots.put('a', 'a3')
    taken = []
    worker = threading.Thread(target=lambda: taken.append(slots.take_batch(5.0)))
    worker.start()
    time.sleep(0.2)
    assert not taken, 'must wait for the streaming camera b'
    slots.put('b', 'b3')
    worker.join(5)
    assert taken == [[('a', 'a3'), ('b', 'b3')]]
    # once 'b' is silent for more than LIVE_PERIODS of its interval, 'a' runs alone at once
    now[0] = 10.25 + 0.1 * LIVE_PERIODS + 0.01
    slots.put('a', 'a4')
    started = time.monotonic()
    assert slots.take_batch(5.0) == [('a', 'a4')]
    assert time.monotonic() - started < 1.0


def test_camera_slots_wait_no_longer_than_the_batch_timeout():
    """A streaming camera that misses its frame delays the others by the timeout, not more."""
    slots = CameraSlots(['a', 'b'])
    for _ in range(3):
        slots.put('a', 'a')
        slots.put('b', 'b')
        time.sleep(0.05)
    slots.take_batch(timeout=0.1)
    slots.put('a', 'late')
    started = time.monotonic()
    assert slots.take_batch(0.03) == [('a', 'late')]
    waited = time.monotonic() - started
    assert 0.025 <= waited < 1.0, waited


def test_stats_claim_no_upstream_loss_without_a_known_rate():
    """
    A bursty publisher (10 frames 2 ms apart, then 200 ms of pause) lost nothing.

    Stamp gaps mean lost frames only for a camera of known rate: without expected_rate the
    status reports the stamp intervals, not a loss count (the median interval taken as the
    period made every pause 99 "lost" frames).
    """
    stats = NodeStats()
    stamp = 100.0
    for _ in range(10):
        for _ in range(10):
            stats.frame_received(stamp)
            stamp += 0.002
        stamp += 0.2
    values = stats.values(dropped=0)
    assert stats.received == 100 and stats.lost_upstream == 0
    assert 'frames_lost_upstream' not in values
    assert values['stamp_interval.p50_ms'] == '2.00'
    assert float(values['stamp_interval.max_ms']) == pytest.approx(202.0, abs=0.01)


def test_stats_estimate_lost_frames_from_stamp_gaps_at_the_expected_rate():
    """A 10 Hz camera missing frames 7 and 8, then 11: three frames lost upstream."""
    stats = NodeStats()
    stats.expected_rate = 10.0
    for index in [0, 1, 2, 3, 4, 5, 6, 9, 10, 12, 13]:
        stats.frame_received(100.0 + index * 0.1)
    assert stats.lost_upstream == 3 and stats.received == 11
    assert stats.values(dropped=0)['frames_lost_upstream'] == '3'


def test_a_matched_publisher_that_sends_nothing_is_flagged():
    """
    Publishers on the input but no frame for a while: WARN (frames DDS cannot carry vanish).

    The limit is max(3 s, 5 periods); silence counts from the last frame, or from when the
    first publisher appeared, or from activation.
    """
    from diagnostic_msgs.msg import DiagnosticStatus

    now = [1000.0]
    stats = NodeStats(clock=lambda: now[0])
    stats.restart_stream()  # activation
    now[0] += 10.0
    assert level_and_message(stats.values(0), True, 0)[1] == 'waiting for images'  # nobody
    stats.input_publishers(1)
    now[0] += 2.0
    values = stats.values(0)
    assert values['input_publishers'] == '1' and values['input_silence_s'] == '2.0'
    assert level_and_message(values, True, 0)[0] == DiagnosticStatus.OK
    now[0] += 2.0
    level, message = level_and_message(stats.values(0), True, 0)
    assert level == DiagnosticStatus.WARN and 'no input for 4.0 s' in message
    assert '1 publisher' in message
    stats.frame_received(5.0)
    now[0] += 1.0
    assert level_and_message(stats.values(0), True, 0) == (DiagnosticStatus.OK, 'ok')
    now[0] += 10.0
    stats.input_publishers(0)  # the publisher left: nothing to expect
    assert level_and_message(stats.values(0), True, 0)[0] == DiagnosticStatus.OK
    assert stats.silence_limit() == 3.0
    stats.expected_rate = 0.5  # a 2 s period: 10 s of silence are normal
    assert stats.silence_limit() == 10.0
    stats.expected_rate = 0.0
    for index in range(1, 4):  # without a rate: 5 x the median stamp interval
        stats.frame_received(5.0 + 4 * index)
    assert stats.silence_limit() == 20.0


def test_the_shipped_dds_profile_carries_the_largest_frame_the_node_accepts():
    """
    The shipped profiles' SHM segment and port queue hold the frames each is for.

    Measured here: with a 32 MB segment or a 512-descriptor port queue, best-effort 4K and 8K
    frames were lost whenever the reader fell one frame behind (3/5 and 2/5 reached the node).
    The default holds two 4K rgb8 frames (64 MB of /dev/shm a process); the 8K profile the
    largest frame the node accepts (512 MB a process).
    """
    from seg_perception.core.imagecodec import MAX_PIXELS, MAX_SIDE
    from seg_perception.ros.dds import (DEFAULT_PROFILE_FRAME_BYTES, FRAGMENT_BYTES,
                                        LARGEST_FRAME_BYTES, profile_limits, profile_path)
    assert LARGEST_FRAME_BYTES >= max(MAX_PIXELS * 8, MAX_SIDE * MAX_SIDE * 3)
    for eight_k, frame_bytes in ((False, 2 * DEFAULT_PROFILE_FRAME_BYTES),
                                 (True, LARGEST_FRAME_BYTES)):
        segment, queue = profile_limits(profile_path(eight_k))
        assert segment >= frame_bytes, (eight_k, segment)
        assert queue * FRAGMENT_BYTES >= frame_bytes, (eight_k, queue)
    assert profile_limits(profile_path())[0] <= 64 * 2**20  # the default stays cheap


def test_stats_use_the_expected_rate_when_known():
    """With expected_rate the period is known from the first interval on."""
    stats = NodeStats()
    stats.expected_rate = 30.0
    stats.frame_received(1.0)
    stats.frame_received(1.0 + 4 / 30.0)
    assert stats.lost_upstream == 3
    # a deactivate/activate cycle: the frames sent meanwhile were not lost upstream
    stats.restart_stream()
    stats.frame_received(5.0)
    stats.frame_received(5.0 + 1 / 30.0)
    assert stats.lost_upstream == 3 and stats.received == 4


def test_stats_percentiles_counters_and_level():
    """Latencies, rejected reasons and outputs show up in the values; rejects give WARN."""
    from diagnostic_msgs.msg import DiagnosticStatus

    stats = NodeStats()
    for value in range(1, 101):
        stats.frame_published({'infer': float(value), 'unknown_stage': 1.0}, ['labels'])
    stats.frame_rejected('step_too_small', 'image: step 1 is smaller than ...')
    values = stats.values(dropped=4)
    assert values['latency.infer.p50_ms'] == '50.50' and values['latency.infer.p99_ms'] == '99.01'
    assert values['frames_dropped_busy'] == '4' and values['rejected.step_too_small'] == '1'
    assert values['published.labels'] == '100' and 'latency.unknown_stage.p50_ms' not in values
    level, message = level_and_message(values, active=True, rejected_before=0)
    assert level == DiagnosticStatus.WARN and 'rejecting' in message
    level, _ = level_and_message(values, active=True, rejected_before=1)
    assert level == DiagnosticStatus.OK
    stats.frames_lost_in_transport(2)  # DDS saw samples it could not deliver (message_lost)
    values = stats.values(dropped=4)
    assert values['frames_lost_in_transport'] == '2'
    level, message = level_and_message(values, True, 1, lost_in_transport_before=0)
    assert level == DiagnosticStatus.WARN and 'DDS lost 2 input frame(s)' in message
    assert level_and_message(values, True, 1, lost_in_transport_before=2)[0] == \
        DiagnosticStatus.OK


def test_defaults_file_is_complete_and_errors_name_it(tmp_path):
    """The shipped file declares every parameter; a bad file is named in the error."""
    defaults = load_defaults()
    assert set(defaults) == set(PARAMETERS)
    assert all(check_choice(name, value) is None for name, value in defaults.items())
    bad = tmp_path / 'params.yaml'
    bad.write_text('/**:\n  ros__parameters:\n    autostart: true\n    colour: red\n')
    with pytest.raises(ConfigError, match='params.yaml.*missing.*unknown'):
        load_defaults(str(bad))
    bad.write_text('/**: [unclosed\n')
    with pytest.raises(ConfigError, match='params.yaml: invalid YAML'):
        load_defaults(str(bad))


def test_runtime_settings_and_choices():
    """Blank drivable names mean the model's own; choices are enforced with the list."""
    settings = RuntimeSettings.from_values(load_defaults())
    assert settings.drivable_classes == () and settings.overlay_alpha == 0.5
    assert drivable_names(['', ' Road ', 'Pavement']) == ('Road', 'Pavement')
    assert 'tensorrt' in check_choice('backend', 'quantum')
    with pytest.raises(ConfigError, match='qos.reliability'):
        input_qos('sometimes')
    with pytest.raises(ConfigError, match='choose one of'):
        profile('fastest')


def test_messages_round_trip_with_header_and_typed_errors():
    """Arrays become Images with the given header and come back equal; bad ones raise."""
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 34
    labels = np.arange(6 * 7, dtype=np.uint8).reshape(6, 7)
    msg = image_to_msg(labels, 'mono8', header)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (6, 7, 7, 'mono8')
    assert msg.header.frame_id == 'cam' and msg.header.stamp.nanosec == 34
    array, encoding = image_from_msg(msg)
    assert encoding == 'mono8' and np.array_equal(array, labels)
    msg.step = 6
    with pytest.raises(InputError) as error:
        image_from_msg(msg, '/cam/image')
    assert error.value.reason == 'step_too_small' and '/cam/image' in str(error.value)


def test_class_table_json_describes_the_model():
    """The JSON fallback of ~/label_info lists ids, names, colors and drivable classes."""
    table = load_class_table('camvid')
    spec = ModelSpec(classes=table.classes, input_height=8, input_width=8,
                     drivable_classes=table.drivable)
    data = json.loads(class_table_json(spec, '/models/m.onnx'))
    assert data['model'] == '/models/m.onnx' and data['drivable'] == ['Road']
    assert [c['name'] for c in data['classes']] == spec.class_names
    assert data['classes'][3] == {'id': 3, 'name': 'Road', 'color': [128, 64, 128]}


def test_big_buffers_stay_in_the_heap_unless_the_user_tuned_malloc():
    import platform

    from seg_perception.ros.memory import keep_large_buffers, user_tuned
    assert user_tuned({'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=0'})
    assert user_tuned({'MALLOC_MMAP_THRESHOLD_': '131072'})
    assert not user_tuned({'GLIBC_TUNABLES': 'glibc.rtld.nns=2', 'MALLOC_ARENA': 'x'})
    assert not keep_large_buffers({'MALLOC_TRIM_THRESHOLD_': '0'})
    if platform.libc_ver()[0] == 'glibc':
        assert keep_large_buffers({})
