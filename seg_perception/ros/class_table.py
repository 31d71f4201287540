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
The class table message on ``~/label_info``, in the most standard form the machine has.

With vision_msgs installed it is a ``vision_msgs/LabelInfo`` (class ids and names, as
REP-independent vision pipelines expect); without it a ``std_msgs/String`` holding the class
table as JSON: ``{"model", "classes": [{"id", "name", "color"}], "drivable", "ignore_index"}``.
Both are published transient-local, so a late subscriber still gets the table.
"""

import json
from typing import Any, Tuple, Type

from std_msgs.msg import String


TOPIC = '~/label_info'

try:  # vision_msgs is part of a ROS desktop install, not of the PyPI wheels
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:  # pragma: no cover - depends on the machine
    LabelInfo = None
    VisionClass = None


def message_type() -> Type:
    """Return the class table message type used on this machine."""
    return LabelInfo if LabelInfo is not None else String


def class_table_json(spec: Any, model_path: str) -> str:
    """Return the JSON form of a model's class table."""
    classes = [{'id': int(c.id), 'name': c.name, 'color': [int(v) for v in c.color]}
               for c in sorted(spec.classes, key=lambda c: c.id)]
    return json.dumps({'model': model_path, 'classes': classes,
                       'drivable': list(spec.drivable_classes),
                       'ignore_index': int(spec.ignore_index)})


def class_table_message(spec: Any, model_path: str, stamp: Any) -> Tuple[Type, Any]:
    """Return (type, message) describing the classes of spec."""
    if LabelInfo is None:
        return String, String(data=class_table_json(spec, model_path))
    msg = LabelInfo()
    msg.header.stamp = stamp
    msg.class_map = [VisionClass(class_id=int(c.id), class_name=c.name)
                     for c in sorted(spec.classes, key=lambda c: c.id)]
    msg.threshold = 0.0
    return LabelInfo, msg
