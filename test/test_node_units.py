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

import numpy as np
import pytest
from std_msgs.msg import Header

from seg_perception.core.errors import ConfigError, InputError
from seg_perception.core.spec import load_class_table, ModelSpec
from seg_perception.ros.class_table import class_table_json
from seg_perception.ros.conversions import image_from_msg, image_to_msg
from seg_perception.ros.diagnostics import level_and_message, NodeStats
from seg_perception.ros.frame_slot import LatestFrameSlot
from seg_perception.ros.parameters import (check_choice, drivable_names, load_defaults,
                                           PARAMETERS, RuntimeSettings)
from seg_perception.ros.qos import input_qos, profile


def test_slot_keeps_the_newest_frame_and_counts_replaced_ones():
    """Put three frames before a take: the worker gets the third, two are dropped."""
    slot = LatestFrameSlot()
    assert slot.put('a') is False
    assert slot.put('b') is True
    assert slot.put('c') is True
    assert slot.take(0.1) == 'c' and slot.dropped == 2
    assert slot.take(0.01) is None  # nothing pending: times out


def test_slot_close_wakes_a_waiting_worker():
    """A worker blocked in take() returns None when the slot closes."""
    slot = LatestFrameSlot()
    results = []
    worker = threading.Thread(target=lambda: results.append(slot.take()))
    worker.start()
    slot.close()
    worker.join(5)
    assert results == [None] and not worker.is_alive()
    slot.open()
    slot.put('x')
    assert slot.take(0.1) == 'x'


def test_stats_estimate_lost_frames_from_stamp_gaps():
    """
    A 10 Hz stream missing frames 7 and 8, then 11: three frames lost upstream.

    Without expected_rate the period is the median interval, known after five intervals.
    """
    stats = NodeStats()
    for index in [0, 1, 2, 3, 4, 5, 6, 9, 10, 12, 13]:
        stats.frame_received(100.0 + index * 0.1)
    assert stats.lost_upstream == 3 and stats.received == 11


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
