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

"""Typed errors of seg_perception; every message names the input at fault and what is wrong."""


class SegPerceptionError(Exception):
    """Base class of every error raised on purpose by seg_perception."""


class SpecError(SegPerceptionError):
    """A model spec or class table is missing, malformed or inconsistent."""


class ModelLoadError(SegPerceptionError):
    """A model file is missing, truncated or cannot be loaded by the chosen backend."""


class BackendError(SegPerceptionError):
    """A backend is unknown, not installed, or failed at run time."""


class InputError(SegPerceptionError):
    """
    An input image has the wrong shape, dtype, encoding or size.

    ``reason`` is a short stable code (e.g. ``step_too_small``, ``unknown_encoding``) that the
    node and the tools use to count rejected frames by reason.
    """

    def __init__(self, message: str, reason: str = 'invalid_input') -> None:
        super().__init__(message)
        self.reason = reason


class DataError(SegPerceptionError):
    """A dataset, bag or label folder is missing, malformed or inconsistent."""
