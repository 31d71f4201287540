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
The launch file, the parameter file and the node's declared parameters cannot drift apart.

launch_ros is not installable from PyPI, so the launch file is parsed (ast), not executed; its
pure functions (argument checks, remappings) are compiled alone from its source and called, with
nothing faked. Where launch_ros is importable a real launch runs the node. The node's declared
parameters are read from a running node process (autostart off: no model needed) through its
parameter services.
"""

import ast
import importlib.util
import os
import re
import xml.etree.ElementTree as ElementTree

import pytest
import yaml

from seg_perception.ros.dds import apply_profile, PROFILE_VARIABLE
from seg_perception.ros.parameters import CLASS_PARAMETERS, load_defaults, PARAMETERS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_FILE = os.path.join(REPO, 'launch', 'segment.launch.py')
DEFAULTS_FILE = os.path.join(REPO, 'config', 'segmentation.yaml')
REQUIRED_ARGUMENTS = {'model_path', 'image_topic', 'camera_info_topic', 'cameras', 'image_topics',
                      'input_transport', 'params_file', 'namespace', 'use_rviz', 'log_level'}
# The launch file's functions that need neither launch nor launch_ros (called by these tests).
PURE_FUNCTIONS = ('camera_info_beside', 'split_list', 'camera_remappings')

apply_profile()  # before any rclpy.init in this process


def launch_constants() -> dict:
    """Return the module-level constants of the launch file (literal values only)."""
    tree = ast.parse(open(LAUNCH_FILE, encoding='utf-8').read(), LAUNCH_FILE)
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return constants


def launch_functions() -> dict:
    """
    Return the launch file's pure functions, compiled alone from its source.

    Only its literal constants and the standard-library os and re are in scope, so nothing of
    launch or launch_ros is imported or faked, and a pure function that starts to need them
    fails here with a NameError instead of passing against a stand-in.
    """
    tree = ast.parse(open(LAUNCH_FILE, encoding='utf-8').read(), LAUNCH_FILE)
    functions = [node for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name in PURE_FUNCTIONS]
    assert sorted(f.name for f in functions) == sorted(PURE_FUNCTIONS)
    namespace = {'os': os, 're': re, **launch_constants()}
    exec(compile(ast.Module(body=functions, type_ignores=[]), LAUNCH_FILE, 'exec'), namespace)
    return {name: namespace[name] for name in PURE_FUNCTIONS}


def test_launch_file_declares_the_documented_arguments():
    constants = launch_constants()
    assert set(constants['ARGUMENTS']) == REQUIRED_ARGUMENTS
    tree = ast.parse(open(LAUNCH_FILE, encoding='utf-8').read())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    # every argument the file reads is declared
    read = {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call) and
            getattr(n.func, 'id', '') == 'LaunchConfiguration' and
            isinstance(n.args[0], ast.Constant)}
    assert read <= set(constants['ARGUMENTS'])


def test_launch_file_forwards_only_declared_node_parameters():
    constants = launch_constants()
    forwarded = {*constants['NODE_PARAMETER_ARGUMENTS'], constants['CAMERAS_ARGUMENT']}
    assert forwarded <= set(constants['ARGUMENTS'])
    assert forwarded <= set(PARAMETERS)
    assert forwarded <= set(load_defaults(DEFAULTS_FILE))


def test_launch_file_references_shipped_files():
    constants = launch_constants()
    for key in ('PARAMS_FILE', 'RVIZ_CONFIG', 'DDS_PROFILE'):
        assert os.path.isfile(os.path.join(REPO, *constants[key])), key
    assert constants['PROFILE_VARIABLE'] == PROFILE_VARIABLE
    assert constants['NODE_EXECUTABLE'] == 'segmentation_node'
    assert constants['NODE_NAME'] == 'segmentation'


def test_single_camera_remappings_are_unchanged_and_identities_left_out():
    remappings = launch_functions()['camera_remappings']
    assert remappings('', '', 'image', '') == ([], [])
    assert remappings('', '', '/camera/image_raw', '') == ([], [
        ('image', '/camera/image_raw'), ('image/compressed', '/camera/image_raw/compressed'),
        ('camera_info', '/camera/camera_info')])
    assert remappings(' ', '', 'image', '/calib/info') == ([], [('camera_info', '/calib/info')])


def test_camera_remappings_follow_image_topics_in_order():
    remappings = launch_functions()['camera_remappings']
    # no image_topics: each camera reads <namespace>/<camera>/image, nothing to remap
    assert remappings('front,left,right', '', 'image', '') == (['front', 'left', 'right'], [])
    names, pairs = remappings(' front , rear_2 ', '/sensing/front/image_raw, /sensing/rear/image',
                              'image', '')
    assert names == ['front', 'rear_2']
    assert pairs == [
        ('front/image', '/sensing/front/image_raw'),
        ('front/image/compressed', '/sensing/front/image_raw/compressed'),
        ('front/camera_info', '/sensing/front/camera_info'),
        ('rear_2/image', '/sensing/rear/image'),
        ('rear_2/image/compressed', '/sensing/rear/image/compressed'),
        ('rear_2/camera_info', '/sensing/rear/camera_info')]
    # a topic that is already the camera's own name is not remapped
    assert remappings('front', 'front/image', 'image', '') == (['front'], [])


@pytest.mark.parametrize('cameras,image_topics,image_topic,camera_info_topic,message', [
    ('', '/a/image', 'image', '', 'image_topics:=/a/image needs cameras:='),
    ('front,left', '/a/image', 'image', '',
     r'cameras:=front,left \(2\) and image_topics:=/a/image \(1\) differ in count'),
    ('front', '/a/image,/b/image', 'image', '',
     r'cameras:=front \(1\) and image_topics:=/a/image,/b/image \(2\)'),
    ('front', '', '/cam/image_raw', '',
     'image_topic:=/cam/image_raw is for a single camera; with cameras:=front give image_topics'),
    ('front', '', 'image', '/cam/camera_info',
     'camera_info_topic:=/cam/camera_info is for a single camera'),
    ('front', '', '/cam/image_raw', '/cam/info',
     'image_topic:=/cam/image_raw camera_info_topic:=/cam/info is for a single camera'),
    ('front,1left', '', 'image', '', "cameras:=front,1left: '1left' is not a camera name"),
    ('front/left', '', 'image', '', "'front/left' is not a camera name"),
    ('front-left', '', 'image', '', "'front-left' is not a camera name"),
    ('front,left,front', '', 'image', '', "cameras:=front,left,front: 'front' is listed twice"),
    ('front,,left', '', 'image', '', 'cameras:=front,,left: item 2 is empty'),
    ('front,left', '/a/image,', 'image', '', 'image_topics:=/a/image,: item 2 is empty'),
])
def test_bad_camera_arguments_fail_with_one_line_naming_them(
        cameras: str, image_topics: str, image_topic: str, camera_info_topic: str, message: str):
    """The launch system logs an OpaqueFunction's exception as one error line and exits 1."""
    remappings = launch_functions()['camera_remappings']
    with pytest.raises(RuntimeError, match=message) as error:
        remappings(cameras, image_topics, image_topic, camera_info_topic)
    assert '\n' not in str(error.value)


def test_node_takes_its_remappings_only_from_camera_remappings():
    """The single-camera remaps, which the node refuses with cameras, are built in one place."""
    tree = ast.parse(open(LAUNCH_FILE, encoding='utf-8').read())
    build = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == '_node')
    calls = {getattr(n.func, 'id', '') for n in ast.walk(build) if isinstance(n, ast.Call)}
    assert 'camera_remappings' in calls
    literals = {n.value for n in ast.walk(build) if isinstance(n, ast.Constant)}
    assert not literals & {'image', 'image/compressed', 'camera_info'}


@pytest.mark.parametrize('name,segment', [('fastdds_shm.xml', 64), ('fastdds_shm_8k.xml', 512)])
def test_shipped_dds_profiles_have_their_segment_and_loopback_udp(name, segment):
    root = ElementTree.parse(os.path.join(REPO, 'config', name)).getroot()
    ns = {'dds': 'http://www.eprosima.com'}
    segments = [int(e.text) for e in root.iterfind('.//dds:segment_size', ns)]
    assert segments == [segment * 1024 * 1024]
    addresses = [e.text for e in root.iterfind('.//dds:interfaceWhiteList/dds:address', ns)]
    assert addresses == ['127.0.0.1']
    builtin = root.find('.//dds:useBuiltinTransports', ns)
    assert builtin is not None and builtin.text == 'false'


def test_rviz_config_shows_input_overlay_labels_drivable_mask_and_grid():
    with open(os.path.join(REPO, 'config', 'segmentation.rviz'), encoding='utf-8') as stream:
        layout = yaml.safe_load(stream)
    topics = {d['Topic']['Value'] for d in layout['Visualization Manager']['Displays']
              if d['Class'] == 'rviz_default_plugins/Image'}
    assert topics == {'/image', '/segmentation/overlay', '/segmentation/color',
                      '/segmentation/drivable_mask'}
    maps = [d['Topic']['Value'] for d in layout['Visualization Manager']['Displays']
            if d['Class'] == 'rviz_default_plugins/Map']
    assert maps == ['/segmentation/drivable_grid']


def test_parameter_file_lists_every_parameter_once():
    with open(DEFAULTS_FILE, encoding='utf-8') as stream:
        data = yaml.safe_load(stream)
    assert list(data) == ['/**']
    assert set(data['/**']['ros__parameters']) == set(PARAMETERS)
    assert not set(CLASS_PARAMETERS) & set(PARAMETERS)


@pytest.mark.ros
def test_running_node_declares_the_parameter_file_defaults(tmp_path):
    """A node started without any parameter file reports exactly the YAML defaults."""
    from rcl_interfaces.srv import DescribeParameters, ListParameters

    from seg_perception.ros.harness.peer import NodeProcess, Peer, wait_until

    defaults = load_defaults(DEFAULTS_FILE)
    node = NodeProcess({'autostart': False}, name='defaults_check', log_dir=str(tmp_path))
    peer = Peer('/defaults_check', outputs=(), diagnostics=False)
    try:
        lister = peer.node.create_client(ListParameters, '/defaults_check/list_parameters')
        assert lister.wait_for_service(timeout_sec=60), node.log()
        names = set(peer._call(lister, ListParameters.Request(), 30).result.names)
        builtin = {'use_sim_time', 'start_type_description_service'}  # rclpy's own
        assert names - builtin == set(PARAMETERS), node.log()
        values = peer.get_parameters(sorted(PARAMETERS))
        expected = dict(defaults, autostart=False)  # the one value this test overrides
        for name in PARAMETERS:
            assert values[name] == expected[name], name
        describer = peer.node.create_client(DescribeParameters,
                                            '/defaults_check/describe_parameters')
        assert describer.wait_for_service(timeout_sec=30)
        descriptors = peer._call(describer, DescribeParameters.Request(
            names=sorted(PARAMETERS)), 30).descriptors
        for descriptor in descriptors:
            info = PARAMETERS[descriptor.name]
            assert descriptor.read_only == info.read_only, descriptor.name
            assert descriptor.description == info.description
            if info.float_range:
                assert descriptor.floating_point_range[0].step == 0.0
        # read-only parameters refuse changes at run time, with a reason
        result = peer.set_parameters({'backend': 'torch'})[0]
        assert not result.successful and 'read-only' in result.reason
        # ranges from the descriptors are enforced
        result = peer.set_parameters({'overlay_alpha': 1.5})[0]
        assert not result.successful
        assert wait_until(node.running, 1.0)
    finally:
        peer.close()
        assert node.stop() == 0, node.log()


def _installed_package() -> bool:
    """Return whether seg_perception is in the ament index (installed with colcon)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        get_package_share_directory('seg_perception')
    except Exception:  # noqa: BLE001 - no ament index or package not installed
        return False
    return True


@pytest.mark.skipif(importlib.util.find_spec('launch_ros') is None or not _installed_package(),
                    reason='needs launch_ros (not installable from PyPI) and seg_perception '
                           'installed with colcon: runs on a ROS install')
def test_launch_file_runs_the_node(labels_model):  # pragma: no cover - needs a ROS install
    """On a ROS install, launching the file starts a node that serves images."""
    import asyncio
    import threading

    import launch
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    from seg_perception.ros.harness.peer import Peer

    service = launch.LaunchService()
    service.include_launch_description(launch.LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(LAUNCH_FILE),
        launch_arguments={'model_path': labels_model}.items())]))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(
        service.run_async(handle_signals=False)), daemon=True)
    thread.start()
    peer = Peer()
    try:
        import numpy as np
        probe = peer.make_message(np.zeros((48, 64, 3), np.uint8), 'rgb8')
        assert peer.wait_ready(probe, 90)
        assert peer.class_tables
    finally:
        peer.close()
        loop.call_soon_threadsafe(service.shutdown)
        thread.join(30)
