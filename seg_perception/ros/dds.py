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

What the profile must carry: a frame travels as fragments of at most FRAGMENT_BYTES (the UDP
transport in the same participant caps the message size for every transport) through the
publisher's shared-memory segment and the subscriber's port queue (``port_queue_capacity``
fragment descriptors). A best-effort frame survives a reader that falls behind only if both
hold it whole, so both are sized for LARGEST_FRAME_BYTES.
"""

import os
from typing import MutableMapping, Optional, Tuple
import xml.etree.ElementTree as ElementTree

from seg_perception.core.errors import ConfigError
from seg_perception.core.imagecodec import MAX_PIXELS, MAX_SIDE
from seg_perception.core.resources import config_file


PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
PROFILE_NAME = 'fastdds_shm.xml'  # frames up to 4K; 64 MB of /dev/shm per process
PROFILE_8K_NAME = 'fastdds_shm_8k.xml'  # frames up to the node's limit; 512 MB per process
# The largest frame the default profile is sized for: 3840x2160 rgb8, twice over.
DEFAULT_PROFILE_FRAME_BYTES = 3840 * 2160 * 3
# Payload of one RTPS fragment: below the 65500-byte UDP datagram, less the RTPS headers.
FRAGMENT_BYTES = 64000
# The largest frame the node accepts (MAX_PIXELS of rgba16/bgra16, 8 bytes a pixel), or one a
# side of MAX_SIDE in rgb8 (8192x8192, 201 MB: refused as too_large, but counted if it arrives).
LARGEST_FRAME_BYTES = max(MAX_PIXELS * 8, MAX_SIDE * MAX_SIDE * 3)
FASTDDS_NAMESPACE = '{http://www.eprosima.com}'
DEFAULT_PORT_QUEUE_CAPACITY = 512  # Fast DDS's default when a profile does not set it


def profile_path(eight_k: bool = False) -> str:
    """Return the path of a shipped profile: up to 4K (default) or up to 8K frames."""
    return config_file(PROFILE_8K_NAME if eight_k else PROFILE_NAME)


def apply_profile(environ: Optional[MutableMapping[str, str]] = None,
                  eight_k: bool = False) -> str:
    """Set FASTDDS_DEFAULT_PROFILES_FILE to a shipped profile unless set; return the value."""
    environ = os.environ if environ is None else environ
    if not environ.get(PROFILE_VARIABLE):
        environ[PROFILE_VARIABLE] = profile_path(eight_k)
    return environ[PROFILE_VARIABLE]


def profile_limits(path: str) -> Tuple[int, int]:
    """Return (segment_size bytes, port_queue_capacity) of the SHM transport of a profile."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ConfigError(f'{path}: cannot read the DDS profile: {error}') from None
    for descriptor in root.iter(f'{FASTDDS_NAMESPACE}transport_descriptor'):
        if (descriptor.findtext(f'{FASTDDS_NAMESPACE}type') or '').strip() != 'SHM':
            continue
        try:
            segment = int(descriptor.findtext(f'{FASTDDS_NAMESPACE}segment_size') or 0)
            queue = int(descriptor.findtext(f'{FASTDDS_NAMESPACE}port_queue_capacity') or
                        DEFAULT_PORT_QUEUE_CAPACITY)
        except ValueError as error:
            raise ConfigError(f'{path}: SHM transport: {error}') from None
        return segment, queue
    raise ConfigError(f'{path}: no SHM transport_descriptor')
