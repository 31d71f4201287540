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
The test and benchmark harness: drive a node from another process; never used by the node.

:mod:`.peer` starts ``segmentation_node`` in a subprocess and feeds/records it over real DDS (the
node tests, ``seg-perception bench node`` and the node demo); :mod:`.echo` is a model-free
stand-in node whose latency is the transport floor. They live apart from the production adapter
so that nothing the node imports depends on them.
"""
