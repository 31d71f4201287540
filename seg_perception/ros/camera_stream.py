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
What the node keeps per camera: topic names, subscriptions, publishers, counters, intrinsics.

A single-camera node has one stream named '' on ``image``/``camera_info`` publishing
``~/labels``, ...; camera ``c`` of a multi-camera node reads ``c/image`` and ``c/camera_info``
(relative, so they follow the node namespace and remap one by one) and publishes
``~/c/labels``, ... in the node's private namespace.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from seg_perception.core.ground_grid import GroundProjector, Intrinsics
from seg_perception.ros.diagnostics import NodeStats
from seg_perception.ros.parameters import RuntimeSettings


INPUT_TOPIC = 'image'
CAMERA_INFO_TOPIC = 'camera_info'
COMPRESSED_SUFFIX = '/compressed'


@dataclass
class CameraStream:
    """One camera's topics and state; its settings are replaced as a whole on a change."""

    name: str
    compressed: bool
    settings: RuntimeSettings
    group: Any  # the callback group of its subscriptions (its own input thread)
    stats: NodeStats = field(default_factory=NodeStats)
    subscription: Any = None
    camera_info_subscription: Any = None
    outputs: Dict[str, Any] = field(default_factory=dict)
    intrinsics: Optional[Intrinsics] = None  # from the latest CameraInfo
    projector: Optional[GroundProjector] = None  # cached for one grid and camera
    input_topic: str = ''  # resolved (remapped) name, filled by the node
    last_log: Dict[str, float] = field(default_factory=dict)
    rejected_reported: int = 0
    lost_reported: int = 0

    def __post_init__(self) -> None:
        """Let the input-loss diagnostics know the camera's rate."""
        self.stats.expected_rate = self.settings.expected_rate

    def relative(self, topic: str) -> str:
        """Return a camera input topic, e.g. ``image`` -> ``front/image``."""
        return f'{self.name}/{topic}' if self.name else topic

    def output(self, topic: str) -> str:
        """Return an output topic in the node's private namespace, e.g. ``~/front/labels``."""
        return f'~/{self.relative(topic)}'

    @property
    def image_topic(self) -> str:
        """Return the relative input topic of the camera's transport."""
        return self.relative(INPUT_TOPIC) + (COMPRESSED_SUFFIX if self.compressed else '')

    @property
    def label(self) -> str:
        """Return how logs name the camera ('' for the one camera of a single-camera node)."""
        return f'camera {self.name}: ' if self.name else ''
