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
Start the segmentation node (and optionally RViz) with the large-image DDS profile.

    ros2 launch seg_perception segment.launch.py image_topic:=/camera/image_raw
    ros2 launch seg_perception segment.launch.py model_path:=/models/pspnet.onnx use_rviz:=true

Arguments left empty take their value from ``params_file`` (default
``config/segmentation.yaml``). ``FASTDDS_DEFAULT_PROFILES_FILE`` is set to the shipped
``config/fastdds_shm.xml`` (64 MB shared-memory segment: frames up to 4K) for every process
started after it, unless it is already set in the environment (export it to
``config/fastdds_shm_8k.xml`` first for 8K cameras). Declaring arguments and forwarding them is
all this file does: no side effects at import.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'seg_perception'
NODE_EXECUTABLE = 'segmentation_node'
NODE_NAME = 'segmentation'
PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
PARAMS_FILE = ('config', 'segmentation.yaml')
RVIZ_CONFIG = ('config', 'segmentation.rviz')
DDS_PROFILE = ('config', 'fastdds_shm.xml')
# Launch arguments forwarded as node parameters of the same name, when not empty.
NODE_PARAMETER_ARGUMENTS = ('model_path', 'input_transport')
ARGUMENTS = {
    'model_path': ('', 'ONNX model or TensorRT engine; empty = params_file (bundled model)'),
    'image_topic': ('image', 'input image topic (image/compressed is derived from it)'),
    'camera_info_topic': ('', 'CameraInfo for ~/drivable_grid; empty = camera_info next to '
                              'image_topic, as image_transport pairs them'),
    'input_transport': ('', 'raw | compressed; empty = params_file'),
    'params_file': ('', 'node parameters (default: the shipped config/segmentation.yaml)'),
    'namespace': ('', 'namespace of the node (its outputs are ~/labels, ...)'),
    'use_rviz': ('false', 'also start rviz2 with config/segmentation.rviz'),
    'log_level': ('info', 'node log level: debug | info | warn | error'),
}


def _share(parts: tuple) -> str:
    return os.path.join(get_package_share_directory(PACKAGE), *parts)


def camera_info_beside(image_topic: str) -> str:
    """Return the camera_info topic beside an image topic (/cam/image -> /cam/camera_info)."""
    namespace, slash, _ = image_topic.rpartition('/')
    return f'{namespace}{slash}camera_info'


def _node(context: LaunchContext) -> list:
    """Build the node once the arguments are known (empty arguments are not forwarded)."""
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    overrides = {name: value[name] for name in NODE_PARAMETER_ARGUMENTS if value[name]}
    image_topic = value['image_topic']
    camera_info = value['camera_info_topic'] or camera_info_beside(image_topic)
    return [Node(
        package=PACKAGE, executable=NODE_EXECUTABLE, name=NODE_NAME,
        namespace=value['namespace'], output='screen',
        parameters=[value['params_file'] or _share(PARAMS_FILE), overrides],
        remappings=[('image', image_topic), ('image/compressed', image_topic + '/compressed'),
                    ('camera_info', camera_info)],
        arguments=['--ros-args', '--log-level', value['log_level']])]


def generate_launch_description() -> LaunchDescription:
    """Return the launch description: arguments, DDS profile, node, optional RViz."""
    defaults = {name: default for name, (default, _) in ARGUMENTS.items()}
    defaults['params_file'] = _share(PARAMS_FILE)  # shown by `ros2 launch -s`
    arguments = [DeclareLaunchArgument(name, default_value=defaults[name],
                                       description=description)
                 for name, (_, description) in ARGUMENTS.items()]
    profile = SetEnvironmentVariable(
        PROFILE_VARIABLE, EnvironmentVariable(PROFILE_VARIABLE, default_value=_share(DDS_PROFILE)))
    rviz = Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                arguments=['-d', _share(RVIZ_CONFIG)],
                condition=IfCondition(LaunchConfiguration('use_rviz')))
    return LaunchDescription([*arguments, profile, OpaqueFunction(function=_node), rviz])
