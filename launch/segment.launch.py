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

r"""
Start the segmentation node (and optionally RViz) with the large-image DDS profile.

    ros2 launch seg_perception segment.launch.py image_topic:=/camera/image_raw
    ros2 launch seg_perception segment.launch.py model_path:=/models/pspnet.onnx use_rviz:=true
    ros2 launch seg_perception segment.launch.py cameras:=front,left \
        image_topics:=/sensing/front/image_raw,/sensing/left/image_raw

Arguments left empty take their value from ``params_file`` (default
``config/segmentation.yaml``). With ``cameras`` the node gets the ``cameras`` parameter and
per-camera remappings (``<camera>/image``, ``<camera>/image/compressed``,
``<camera>/camera_info``) and none of the single-camera ones, which the node refuses together
with ``cameras``; a bad combination of arguments fails the launch with one line naming them.
``FASTDDS_DEFAULT_PROFILES_FILE`` is set to the shipped ``config/fastdds_shm.xml`` (64 MB
shared-memory segment: frames up to 4K) for every process started after it, unless it is already
set in the environment (export it to ``config/fastdds_shm_8k.xml`` first for 8K cameras).
Declaring arguments and forwarding them is all this file does: no side effects at import.
"""

import os
import re

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
# Launch argument forwarded, when not empty, as the node's string-array parameter of the same
# name (comma-separated in the argument, validated first).
CAMERAS_ARGUMENT = 'cameras'
# A camera name is one ROS name token: it becomes a namespace of topics and parameters.
CAMERA_NAME_PATTERN = '[A-Za-z][A-Za-z0-9_]*'
ARGUMENTS = {
    'model_path': ('', 'ONNX model or TensorRT engine; empty = params_file (bundled model)'),
    'image_topic': ('image', 'single camera: input image topic (image/compressed is derived '
                             'from it); use image_topics with cameras'),
    'camera_info_topic': ('', 'single camera: CameraInfo for ~/drivable_grid; empty = '
                              'camera_info next to image_topic, as image_transport pairs them'),
    'cameras': ('', 'comma-separated camera names (front,left,right); empty = one camera on '
                    'image_topic'),
    'image_topics': ('', 'with cameras: comma-separated input image topics, one per camera in '
                         'the same order; empty = <namespace>/<camera>/image'),
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


def split_list(argument: str, text: str) -> list[str]:
    """Split a comma-separated launch argument; '' is no item, an empty item is an error."""
    if not text.strip():
        return []
    items = [item.strip() for item in text.split(',')]
    if '' in items:
        position = items.index('') + 1
        raise RuntimeError(f'{argument}:={text}: item {position} is empty')
    return items


def camera_remappings(cameras: str, image_topics: str, image_topic: str = 'image',
                      camera_info_topic: str = '') -> tuple[list[str], list[tuple[str, str]]]:
    """
    Return (camera names, remappings) for the launch arguments, or raise on a bad combination.

    Validated here, before the node starts, so a typo fails the launch with one line naming
    the arguments instead of a node that silently listens on the wrong topics.
    Identity remappings are left out: they change nothing, and without them a ``cameras`` list
    from ``params_file`` meets no single-camera remap at all.
    """
    names = split_list('cameras', cameras)
    topics = split_list('image_topics', image_topics)
    if not names:
        if topics:
            raise RuntimeError(f'image_topics:={image_topics} needs cameras:=<one name per '
                               'topic>; for a single camera use image_topic:=')
        info = camera_info_topic or camera_info_beside(image_topic)
        pairs = [('image', image_topic), ('image/compressed', image_topic + '/compressed'),
                 ('camera_info', info)]
        return [], [(source, target) for source, target in pairs if source != target]
    single = [f'{argument}:={given}' for argument, given in
              (('image_topic', image_topic), ('camera_info_topic', camera_info_topic))
              if given != ARGUMENTS[argument][0]]
    if single:
        named = ' '.join(single)
        raise RuntimeError(f'{named} is for a single camera; with cameras:={cameras} '
                           'give image_topics:=<one topic per camera> (camera_info is beside '
                           'each)')
    for name in names:
        if not re.fullmatch(CAMERA_NAME_PATTERN, name):
            raise RuntimeError(f'cameras:={cameras}: {name!r} is not a camera name '
                               f'({CAMERA_NAME_PATTERN})')
        if names.count(name) > 1:
            raise RuntimeError(f'cameras:={cameras}: {name!r} is listed twice')
    if topics and len(topics) != len(names):
        raise RuntimeError(f'cameras:={cameras} ({len(names)}) and image_topics:={image_topics} '
                           f'({len(topics)}) differ in count; give one topic per camera, in the '
                           'same order')
    pairs = []
    for name, topic in zip(names, topics):
        pairs += [(f'{name}/image', topic), (f'{name}/image/compressed', topic + '/compressed'),
                  (f'{name}/camera_info', camera_info_beside(topic))]
    return names, [(source, target) for source, target in pairs if source != target]


def _node(context: LaunchContext) -> list:
    """Build the node once the arguments are known (empty arguments are not forwarded)."""
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    overrides = {name: value[name] for name in NODE_PARAMETER_ARGUMENTS if value[name]}
    cameras, remappings = camera_remappings(value['cameras'], value['image_topics'],
                                            value['image_topic'], value['camera_info_topic'])
    if cameras:
        overrides[CAMERAS_ARGUMENT] = cameras
    return [Node(
        package=PACKAGE, executable=NODE_EXECUTABLE, name=NODE_NAME,
        namespace=value['namespace'], output='screen',
        parameters=[value['params_file'] or _share(PARAMS_FILE), overrides],
        remappings=remappings,
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
