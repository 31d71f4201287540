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

from seg_perception.core.errors import SpecError

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
PROFILE_NAME = 'fastdds_shm.xml'
PACKAGE = 'seg_perception'


def config_file(name: str) -> str:
    """Return the path of a file of config/ (source tree first, then the ament share)."""
    source_tree = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), 'config', name)
    if os.path.exists(source_tree):
        return source_tree
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = os.path.join(get_package_share_directory(PACKAGE), 'config', name)
    except Exception:  # noqa: BLE001 - ament index absent or package not installed
        installed = ''
    if installed and os.path.exists(installed):
        return installed
    raise SpecError(f'{source_tree}: file not found (nor in the share folder of {PACKAGE})')


def profile_path() -> str:
    """Return the path of the shipped large-image profile."""
    return config_file(PROFILE_NAME)


def apply_profile(environ: Optional[MutableMapping[str, str]] = None) -> str:
    """Set FASTDDS_DEFAULT_PROFILES_FILE to the shipped profile unless set; return the value."""
    environ = os.environ if environ is None else environ
    if not environ.get(PROFILE_VARIABLE):
        environ[PROFILE_VARIABLE] = profile_path()
    return environ[PROFILE_VARIABLE]
