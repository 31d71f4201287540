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
The core's Python log records, through the node's ROS logger.

The core is ROS-free and logs with :mod:`logging` (logger ``seg_perception``): the TensorRT
engine build's progress every 10 s, the cache's repairs, a backend fallback, a drivable gate that
cannot apply. Without a handler Python prints only warnings, bare, on stderr; a node's users read
``/rosout`` and the launch log. :class:`RosLogHandler` hands every record to the node's logger
at the same severity, so it appears there with the node's name and honours ``--log-level``.
"""

import logging
from typing import Any

CORE_LOGGER = 'seg_perception'


class RosLogHandler(logging.Handler):
    """Forward Python log records to an rclpy logger at the matching severity."""

    def __init__(self, ros_logger: Any) -> None:
        """Forward to ros_logger (``node.get_logger()``)."""
        super().__init__(logging.DEBUG)
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        """Log the record's message with the ROS logger (exceptions never escape)."""
        try:
            message = self.format(record)
            logger = self._ros_logger
            if record.levelno >= logging.ERROR:
                logger.error(message)
            elif record.levelno >= logging.WARNING:
                logger.warning(message)
            elif record.levelno >= logging.INFO:
                logger.info(message)
            else:
                logger.debug(message)
        except Exception:  # noqa: BLE001 - logging must never break the caller
            self.handleError(record)


def bridge_core_logging(ros_logger: Any) -> RosLogHandler:
    """Send the core's log records to ros_logger from now on; return the handler to remove."""
    handler = RosLogHandler(ros_logger)
    core = logging.getLogger(CORE_LOGGER)
    core.addHandler(handler)
    if core.level == logging.NOTSET or core.level > logging.INFO:
        core.setLevel(logging.INFO)  # the ROS logger filters by its own level
    return handler


def unbridge_core_logging(handler: RosLogHandler) -> None:
    """Stop forwarding through handler."""
    logging.getLogger(CORE_LOGGER).removeHandler(handler)
