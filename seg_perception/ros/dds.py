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
The shipped Fast DDS profile for large images (config/fastdds_shm.xml).

Fast DDS reads ``FASTDDS_DEFAULT_PROFILES_FILE`` once per process, when the first participant is
created (``rclpy.init``): call :func:`apply_profile` before that in every process that publishes
big images. An existing setting is kept (the user's own profile wins).
"""

import os
from typing import MutableMapping, Optional

from seg_perception.core.resources import config_file


PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
PROFILE_NAME = 'fastdds_shm.xml'


def profile_path() -> str:
    """Return the path of the shipped large-image profile."""
    return config_file(PROFILE_NAME)


def apply_profile(environ: Optional[MutableMapping[str, str]] = None) -> str:
    """Set FASTDDS_DEFAULT_PROFILES_FILE to the shipped profile unless set; return the value."""
    environ = os.environ if environ is None else environ
    if not environ.get(PROFILE_VARIABLE):
        environ[PROFILE_VARIABLE] = profile_path()
    return environ[PROFILE_VARIABLE]
