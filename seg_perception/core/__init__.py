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
The ROS-free core of seg_perception: numpy and OpenCV only, never rclpy or message packages.

``from seg_perception.core import Segmenter`` is the entry point; importing this package loads
neither rclpy nor torch nor onnxruntime (backends are imported when a model is loaded).
"""

from seg_perception.core.errors import (BackendError, DataError, InputError, ModelLoadError,
                                        SegPerceptionError, SpecError)
from seg_perception.core.segmenter import Segmenter, SegResult
from seg_perception.core.spec import ClassInfo, load_spec, ModelSpec


__all__ = ['BackendError', 'ClassInfo', 'DataError', 'InputError', 'ModelLoadError',
           'ModelSpec', 'SegPerceptionError', 'SegResult', 'Segmenter', 'SpecError',
           'load_spec']
