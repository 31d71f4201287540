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
A model-free stand-in for the node, to measure what DDS and rclpy alone cost.

``python -m seg_perception.ros.harness.echo`` subscribes to ``image`` with the node's input QoS
and, for every frame, publishes on ``~/labels`` a mono8 image of the same width and height
(zeros) with the input's header, as the node would, but without decoding or inference.
``seg-perception bench node`` streams the same camera frames through it after the node: its
camera stamp -> ``~/labels`` latency is the transport floor of the node's.
"""

import sys
from typing import Any, List, Optional

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from seg_perception.ros import qos
from seg_perception.ros.conversions import image_to_msg
from seg_perception.ros.memory import keep_large_buffers


NODE_NAME = 'segmentation_echo'


class EchoNode(Node):
    """Answer every image with a same-size mono8 ``~/labels`` carrying the input header."""

    def __init__(self) -> None:
        """Create the subscription and the publisher."""
        super().__init__(NODE_NAME)
        self._publisher = self.create_publisher(Image, '~/labels', qos.output_qos())
        self._zeros: Optional[np.ndarray] = None
        self.create_subscription(Image, 'image', self._on_image, qos.input_qos())

    def _on_image(self, msg: Any) -> None:
        shape = (int(msg.height), int(msg.width))
        if self._zeros is None or self._zeros.shape != shape:
            self._zeros = np.zeros(shape, np.uint8)
        self._publisher.publish(image_to_msg(self._zeros, 'mono8', msg.header))


def main(args: Optional[List[str]] = None) -> int:
    """Spin the echo node until shutdown."""
    keep_large_buffers()
    rclpy.init(args=args)
    node = EchoNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
