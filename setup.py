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

"""ament_python / pip packaging for seg_perception."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'seg_perception'


def data_tree(folder: str) -> list:
    """Return (share destination, files) pairs for every file below folder."""
    pairs = {}
    for path in glob(os.path.join(folder, '**', '*'), recursive=True):
        if os.path.isfile(path):
            destination = os.path.join('share', package_name, os.path.dirname(path))
            pairs.setdefault(destination, []).append(path)
    return sorted(pairs.items())


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        *data_tree('launch'),
        *data_tree('config'),
        *data_tree('models'),
        *data_tree('data/samples'),  # CamVid frames + licence: demo and bench defaults
    ],
    package_data={package_name: ['py.typed']},
    install_requires=['setuptools', 'numpy', 'opencv-python-headless', 'onnxruntime', 'pyyaml',
                      'rosbags', 'tqdm', 'matplotlib'],
    extras_require={
        'ros': ['ros-rclpy', 'ros-sensor-msgs', 'ros-std-msgs', 'ros-rmw-fastrtps-cpp',
                'ros-nav-msgs', 'ros-diagnostic-msgs', 'ros-geometry-msgs'],
        'export': ['torch==2.14.1', 'torchvision==0.29.1', 'segmentation-models-pytorch',
                   'onnx', 'onnxscript', 'onnxslim'],
        'tensorrt': ['tensorrt', 'polygraphy', 'cuda-python'],
        # fleet evaluation on Ray (evaluate --ray); never imported by the node
        'fleet': ['ray[data]==2.60.0'],
        'dev': ['pytest', 'pytest-timeout', 'flake8', 'flake8-quotes', 'flake8-docstrings',
                'pydocstyle', 'colcon-common-extensions', 'catkin-pkg'],
    },
    zip_safe=True,
    maintainer='seg_perception developers',
    maintainer_email='dev@seg-perception.org',
    description='Semantic segmentation node and tools for driving (ROS 2).',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'segmentation_node = seg_perception.ros.node:main',
            'seg-perception = seg_perception.tools.cli:main',
        ],
        # the core's torch backend builds state-dict checkpoints through these (core < models)
        'seg_perception.network_builders': [
            'zoo = seg_perception.models.zoo:build_network',
        ],
    },
)
