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
QoS profiles of the segmentation node, by name.

- ``input``: sensor data (volatile, keep last ``depth``, best effort by default) so the node
  always works on the newest frame; a queue would only add latency.
- ``output``: reliable, keep last 2, volatile: RViz and best-effort peers both connect.
- ``latched``: reliable, transient local, keep last 1: late joiners get the class table.
"""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from seg_perception.core.errors import ConfigError


RELIABILITY = {
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'reliable': ReliabilityPolicy.RELIABLE,
}
OUTPUT_DEPTH = 2


def input_qos(reliability: str = 'best_effort', depth: int = 1) -> QoSProfile:
    """Return the image subscription profile (sensor data with the given reliability/depth)."""
    if reliability not in RELIABILITY:
        raise ConfigError(f'qos.reliability: {reliability!r} is not one of {list(RELIABILITY)}')
    if depth < 1:
        raise ConfigError(f'qos.depth: must be at least 1, got {depth}')
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def output_qos() -> QoSProfile:
    """Return the profile of the image outputs (reliable, keep last 2)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=OUTPUT_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def latched_qos() -> QoSProfile:
    """Return the profile of the class table topic (transient local, keep last 1)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def diagnostics_qos() -> QoSProfile:
    """Return the /diagnostics profile used by diagnostic_updater (reliable, keep last 10)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


PROFILES = {
    'input': input_qos,
    'output': output_qos,
    'latched': latched_qos,
    'diagnostics': diagnostics_qos,
}


def profile(name: str) -> QoSProfile:
    """Return a profile by name; unknown names list the choices."""
    if name not in PROFILES:
        raise ConfigError(f'unknown QoS profile {name!r}; choose one of {sorted(PROFILES)}')
    return PROFILES[name]()
