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

"""The one stamp matcher (io.frames.StampPairs) that every evaluate mode pairs frames with."""

from seg_perception.io.frames import StampPairs


def test_first_message_of_a_stamp_wins_on_each_side():
    pairs = StampPairs()
    assert pairs.offer(1, 10, 'label a') == (StampPairs.WAITING, None)
    assert pairs.offer(1, 10, 'label b') == (StampPairs.DUPLICATE, None)
    assert pairs.offer(0, 10, 'image') == (StampPairs.MATCHED, 'label a')
    # a stamp that matched is taken on both sides
    assert pairs.offer(0, 10, 'image again') == (StampPairs.DUPLICATE, None)
    assert pairs.offer(1, 10, 'label c') == (StampPairs.DUPLICATE, None)
    assert pairs.duplicates == [1, 2]
    assert pairs.matched == {10}


def test_waiting_messages_expire_and_free_their_stamp():
    pairs = StampPairs()
    pairs.offer(0, 1, {'t': 1})
    pairs.offer(0, 2, {'t': 5})
    assert pairs.expire(0, lambda item: item['t'] < 3) == [{'t': 1}]
    assert list(pairs.waiting[0]) == [2]
    assert pairs.offer(1, 1, 'late label') == (StampPairs.WAITING, None)  # nothing waits on 1
    assert pairs.offer(1, 2, 'label') == (StampPairs.MATCHED, {'t': 5})
