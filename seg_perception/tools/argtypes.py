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
Argument types for the command line: a bad value is bad usage (argparse exits with 2).

Each returns the parsed value or raises ``argparse.ArgumentTypeError`` with what is allowed, so
``--rate nan`` or ``--batch-size 0`` stop before any work starts.
"""

import argparse
import math
import re
from typing import Callable


TOPIC_PATTERN = re.compile(r'^[~/]?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$')


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        what = 'an integer' if kind is int else 'a number'
        raise argparse.ArgumentTypeError(f'{text!r} is not {what}') from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'{text!r} is not a finite number')
    return value


def at_least(minimum: float, kind: type = int) -> Callable[[str], float]:
    """Return a parser of numbers >= minimum (finite for floats)."""
    def parse(text: str) -> float:
        value = _number(text, kind)
        if value < minimum:
            raise argparse.ArgumentTypeError(f'{text!r} must be >= {minimum:g}')
        return value
    parse.__name__ = f'{kind.__name__} >= {minimum:g}'
    return parse


def above(minimum: float, kind: type = float) -> Callable[[str], float]:
    """Return a parser of numbers > minimum (finite for floats)."""
    def parse(text: str) -> float:
        value = _number(text, kind)
        if value <= minimum:
            raise argparse.ArgumentTypeError(f'{text!r} must be > {minimum:g}')
        return value
    parse.__name__ = f'{kind.__name__} > {minimum:g}'
    return parse


def within(low: float, high: float, kind: type = float) -> Callable[[str], float]:
    """Return a parser of numbers in [low, high] (finite for floats)."""
    what = 'an integer' if kind is int else 'a number'

    def parse(text: str) -> float:
        value = _number(text, kind)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f'{text!r} must be {what} in [{low:g}, {high:g}]')
        return value
    parse.__name__ = f'{kind.__name__} in [{low:g}, {high:g}]'
    return parse


positive_int = at_least(1)
non_negative_int = at_least(0)
positive_float = above(0.0)
non_negative_float = at_least(0.0, float)
unit_interval = within(0.0, 1.0)


def topic_name(text: str) -> str:
    """Return a valid ROS topic name (letters, digits, underscores, '/'-separated)."""
    if not TOPIC_PATTERN.match(text) or '//' in text:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a valid ROS topic name (letters, digits and _ between slashes, '
            'not starting with a digit)')
    return text
