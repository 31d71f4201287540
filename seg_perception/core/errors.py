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

from typing import Union


# the longest error line a log, a rejected parameter or the CLI prints
MAX_ERROR_LINE = 1000
# the longest value quoted inside an error (a hostile file must not make a huge message)
MAX_QUOTED = 120


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


class ConfigError(SegPerceptionError):
    """A node parameter, QoS profile or configuration file is invalid."""


class UsageError(SegPerceptionError):
    """A bad command-line value or combination of options (exit code 2, like argparse)."""


def one_line(error: Union[BaseException, str], limit: int = MAX_ERROR_LINE) -> str:
    """
    Return an error (or text) on one line of at most ``limit`` characters.

    Whitespace, newlines included, is folded; a foreign exception is prefixed with its type (ours
    already say what is wrong); an empty message becomes the type name.
    """
    if isinstance(error, BaseException):
        text = ' '.join(str(error).split())
        if not isinstance(error, SegPerceptionError) or not text:
            text = f'{type(error).__name__}: {text}' if text else type(error).__name__
    else:
        text = ' '.join(str(error).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def quoted(value: object, limit: int = MAX_QUOTED) -> str:
    """Return ``repr(value)`` capped at ``limit`` characters, for quoting input in an error."""
    text = repr(value)
    return text if len(text) <= limit else f'{text[:limit - 3]}... ({len(text)} characters)'
