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
Parameters of the segmentation node: defaults from config/segmentation.yaml, descriptors.

The defaults live in one place, ``config/segmentation.yaml``; this module reads them and adds
what a YAML value cannot say: description, read-only flag, range and choices. Runtime changes
are validated here (choices, class names) so that the node only applies valid values.
"""

from dataclasses import dataclass
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
import weakref

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rcl_interfaces.srv import SetParameters
from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException,
                              ParameterNotDeclaredException)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_service import ParameterService

from seg_perception.core.drivable import DrivableConfig
from seg_perception.core.errors import ConfigError
from seg_perception.core.ground_grid import GridConfig
from seg_perception.core.resources import config_file
from seg_perception.core.spec import read_yaml


DEFAULTS_FILE_NAME = 'segmentation.yaml'
NODE_NAME = 'segmentation'

# drivable_grid.<field> parameters that make a core GridConfig
GRID_FIELDS = ('resolution', 'length', 'width', 'start', 'camera_height', 'camera_pitch')
# drivable.<field> parameters that make the core DrivableConfig of the mask
DRIVABLE_FIELDS = ('min_confidence', 'connect_to_bottom', 'min_area', 'close_size', 'open_size')

# Parameters each camera of a multi-camera node has as <camera>.<name>; their defaults are the
# node-wide values. With cameras, the node-wide runtime ones are only those defaults.
CAMERA_PARAMETERS = ('input_transport', 'expected_rate', 'drivable_grid.camera_height',
                     'drivable_grid.camera_pitch', 'drivable_grid.horizontal_fov')
CAMERA_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*\Z')

# Filled from the model at configure time (and after a model swap); never set by users.
CLASS_PARAMETERS = ('classes.ids', 'classes.names', 'classes.colors')

# Parameters that depend on each other: a set_parameters request that sets more than one of them
# applies them together (a new model's drivable classes exist only in the new model).
SET_TOGETHER = ('model_path', 'drivable_classes')


@dataclass(frozen=True)
class ParameterInfo:
    """What the YAML default cannot say about a parameter."""

    description: str
    read_only: bool = True
    choices: Tuple[str, ...] = ()
    int_range: Optional[Tuple[int, int]] = None
    float_range: Optional[Tuple[float, float]] = None


PARAMETERS: Dict[str, ParameterInfo] = {
    'autostart': ParameterInfo(
        'Configure and activate on start; false waits for a lifecycle manager.'),
    'cameras': ParameterInfo(
        'Camera names; each camera c reads c/image (and c/camera_info) and publishes ~/c/labels, '
        "~/c/drivable_mask, ... with one model for all. [''] (no names) = one camera on image."),
    'batch_timeout_ms': ParameterInfo(
        "How long a camera's ready frame waits for the other streaming cameras' frames so that "
        'one inference runs them all; 0 = run whatever is ready.', read_only=False,
        float_range=(0.0, 1000.0)),
    'model_path': ParameterInfo(
        'ONNX model or TensorRT engine; empty = the bundled default model. Changing it at run '
        'time loads the new model in the background and switches between two frames.',
        read_only=False),
    'allow_torch_models': ParameterInfo(
        'Accept torch files (.pt, .pth, .pt2, TorchScript) as model_path; they can run code when '
        'loaded and any DDS participant can set model_path, so keep false on an open domain.'),
    'backend': ParameterInfo('Inference backend.',
                             choices=('auto', 'tensorrt', 'onnxruntime', 'torch')),
    'precision': ParameterInfo('Numeric precision of the engine.',
                               choices=('fp32', 'fp16', 'int8')),
    'device': ParameterInfo('Device, e.g. cuda:0 or cpu; empty = the backend default.'),
    'engine_cache_dir': ParameterInfo(
        'Folder of cached TensorRT engines; empty = next to the model.'),
    'num_threads': ParameterInfo('CPU inference threads; 0 = the backend default.',
                                 int_range=(0, 256)),
    'input_transport': ParameterInfo(
        'raw: sensor_msgs/Image on image; compressed: sensor_msgs/CompressedImage on '
        'image/compressed.', choices=('raw', 'compressed')),
    'drivable_classes': ParameterInfo(
        "Class names that count as drivable; no names = the model's own drivable classes.",
        read_only=False),
    'overlay_alpha': ParameterInfo('Weight of the class colors in ~/overlay.',
                                   read_only=False, float_range=(0.0, 1.0)),
    'publish_color': ParameterInfo('Publish ~/color while it has subscribers.', read_only=False),
    'publish_overlay': ParameterInfo('Publish ~/overlay while it has subscribers.',
                                     read_only=False),
    'publish_confidence': ParameterInfo('Publish ~/confidence while it has subscribers.',
                                        read_only=False),
    'publish_drivable_grid': ParameterInfo(
        'Publish ~/drivable_grid (OccupancyGrid on the ground plane) while it has subscribers.',
        read_only=False),
    'drivable.min_confidence': ParameterInfo(
        'Pixels whose winning-class confidence (0..255) is below this are not drivable; 0 = no '
        'gate. Needs a model with confidence (the bundled one); evaluate '
        '--drivable-precision names the value for a precision.', read_only=False,
        int_range=(0, 255)),
    'drivable.connect_to_bottom': ParameterInfo(
        'Keep only drivable regions connected to the bottom image row (the ego vehicle).',
        read_only=False),
    'drivable.min_area': ParameterInfo('Drop drivable regions smaller than this fraction of the '
                                       'image.', read_only=False, float_range=(0.0, 0.99)),
    'drivable.close_size': ParameterInfo(
        'Closing kernel as a fraction of the mask width (fills narrow holes); 0 = off.',
        read_only=False, float_range=(0.0, 0.99)),
    'drivable.open_size': ParameterInfo(
        'Opening kernel as a fraction of the mask width (removes speckles); 0 = off.',
        read_only=False, float_range=(0.0, 0.99)),
    'drivable_grid.resolution': ParameterInfo('Grid cell size in metres.', read_only=False,
                                              float_range=(0.01, 10.0)),
    'drivable_grid.length': ParameterInfo('Metres covered ahead, from drivable_grid.start.',
                                          read_only=False, float_range=(0.1, 1000.0)),
    'drivable_grid.width': ParameterInfo('Metres covered across, centred on the camera.',
                                         read_only=False, float_range=(0.1, 1000.0)),
    'drivable_grid.start': ParameterInfo(
        "Metres from the ground point under the camera to the grid's near edge.",
        read_only=False, float_range=(-1000.0, 1000.0)),
    'drivable_grid.camera_height': ParameterInfo('Camera height above the ground in metres.',
                                                 read_only=False, float_range=(0.01, 100.0)),
    'drivable_grid.camera_pitch': ParameterInfo(
        'Camera pitch in radians, positive = looking down.', read_only=False,
        float_range=(-1.5, 1.5)),
    'drivable_grid.horizontal_fov': ParameterInfo(
        'Horizontal field of view in degrees, used until a CameraInfo arrives on camera_info.',
        read_only=False, float_range=(1.0, 179.0)),
    'qos.reliability': ParameterInfo('Reliability of the image subscription.',
                                     choices=('best_effort', 'reliable')),
    'qos.depth': ParameterInfo('Depth of the image subscription queue (1 = latest frame).',
                               int_range=(1, 100)),
    'expected_rate': ParameterInfo(
        'Nominal camera rate in Hz for the input-loss diagnostics; 0 = unknown.',
        read_only=False, float_range=(0.0, 1000.0)),
    'diagnostics_period': ParameterInfo('Seconds between /diagnostics messages.',
                                        float_range=(0.1, 60.0)),
    'error_log_period': ParameterInfo(
        'Seconds between two log lines for rejected input of one reason.',
        float_range=(0.0, 3600.0)),
}

CLASS_PARAMETER_INFO: Dict[str, str] = {
    'classes.ids': 'Class ids of the model (label values), from the model file.',
    'classes.names': 'Class names of the model in the order of classes.ids.',
    'classes.colors': 'Display colors, R, G, B per class in the order of classes.ids.',
}


def defaults_path() -> str:
    """Return the path of config/segmentation.yaml (source tree first, then the ament share)."""
    return config_file(DEFAULTS_FILE_NAME)


def _flatten(values: Mapping[str, Any], prefix: str = '') -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in values.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat


def load_defaults(path: Optional[str] = None) -> Dict[str, Any]:
    """Return {parameter name: default} from a ROS 2 parameter file (nested keys dotted)."""
    path = path or defaults_path()
    data = read_yaml(path, 'node defaults', ConfigError)
    if not isinstance(data, Mapping) or len(data) != 1:
        raise ConfigError(f'{path}: expected one node key (/**) holding ros__parameters')
    node_section = next(iter(data.values()))
    if not isinstance(node_section, Mapping) or 'ros__parameters' not in node_section:
        raise ConfigError(f'{path}: the node key has no ros__parameters mapping')
    defaults = _flatten(node_section['ros__parameters'])
    missing = sorted(set(PARAMETERS) - set(defaults))
    unknown = sorted(set(defaults) - set(PARAMETERS))
    if missing or unknown:
        raise ConfigError(f'{path}: node parameters missing {missing}, unknown {unknown}')
    return defaults


def describe(name: str, default: Any) -> ParameterDescriptor:
    """Return the descriptor of a parameter (description, read-only flag, range, choices)."""
    info = PARAMETERS[name]
    descriptor = ParameterDescriptor(name=name, description=info.description,
                                     read_only=info.read_only)
    descriptor.type = Parameter.Type.from_parameter_value(default).value
    if info.choices:
        descriptor.additional_constraints = 'one of: ' + ', '.join(info.choices)
    if info.int_range:
        descriptor.integer_range = [IntegerRange(from_value=info.int_range[0],
                                                 to_value=info.int_range[1], step=1)]
    if info.float_range:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=info.float_range[0], to_value=info.float_range[1], step=0.0)]
    return descriptor


def declare_node_parameters(node: Node, defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """
    Declare every node parameter with its descriptor; return the values in effect.

    A value given at start-up (``-p``, ``--params-file``) that breaks the descriptor's type or
    range, or is not one of the choices, raises ConfigError naming the parameter, the value and
    what is allowed.
    """
    return {name: _declare(node, name, name, defaults[name]) for name in PARAMETERS}


def _declare(node: Node, name: str, info_name: str, default: Any) -> Any:
    """Declare ``name`` with the descriptor of ``info_name``; return its value in effect."""
    descriptor = describe(info_name, default)
    descriptor.name = name
    try:
        value = node.declare_parameter(name, default, descriptor).value
    except (InvalidParameterTypeException, InvalidParameterValueException):
        # rclpy keeps the -p / --params-file values in Node._parameter_overrides (Humble
        # to Kilted); the exceptions carry the value only inside their message.
        given = getattr(node, '_parameter_overrides', {}).get(name)
        problem = rejected_override(info_name, default, given)
        raise ConfigError(f'parameter {name}{problem[len(info_name):]}') from None
    problem = check_choice(info_name, value)
    if problem:
        raise ConfigError(f'parameter {name}{problem[len(info_name):]}')
    return value


def camera_names(value: Sequence[str]) -> Tuple[str, ...]:
    """
    Return the names of a ``cameras`` value; () for the single-camera default [''].

    A name is a ROS name token (it becomes the topic namespace ``<name>/image`` and the
    parameter prefix ``<name>.``): invalid, duplicate or reserved names raise ConfigError.
    """
    names = tuple(str(name).strip() for name in value)
    if not any(names):
        return ()
    reserved = sorted({name.split('.')[0] for name in PARAMETERS if '.' in name} |
                      {name.split('.')[0] for name in CLASS_PARAMETERS})
    seen = set()
    for name in names:
        if not CAMERA_NAME.match(name):
            raise ConfigError(f'parameter cameras: {name!r} is not a camera name (a letter, then '
                              f'letters, digits or _), in {list(names)}')
        if name in reserved:
            raise ConfigError(f'parameter cameras: {name!r} is reserved for the node parameters '
                              f'{name}.*; reserved: {reserved}')
        if name in seen:
            raise ConfigError(f'parameter cameras: {name!r} is given twice, in {list(names)}')
        seen.add(name)
    return names


def declare_camera_parameters(node: Node, cameras: Sequence[str],
                              values: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Declare ``<camera>.<name>`` for CAMERA_PARAMETERS; return {camera: {name: value}}."""
    return {camera: {name: _declare(node, f'{camera}.{name}', name, values[name])
                     for name in CAMERA_PARAMETERS} for camera in cameras}


def unused_overrides(node: Node) -> List[str]:
    """Return start-up parameter values (-p, params file) that no declared parameter took."""
    given = getattr(node, '_parameter_overrides', {})
    return sorted(name for name in given if not node.has_parameter(name))


def allowed_values(name: str, default: Any) -> str:
    """Return what a parameter accepts in words, e.g. 'a double in [0.0, 1.0]'."""
    info = PARAMETERS[name]
    if info.int_range:
        return f'an integer in [{info.int_range[0]}, {info.int_range[1]}]'
    if info.float_range:
        return f'a double in [{info.float_range[0]!r}, {info.float_range[1]!r}]'
    if info.choices:
        return f'one of {list(info.choices)}'
    kind = _type_in_words(Parameter.Type.from_parameter_value(default))
    return kind + ' (true or false)' if kind == 'a bool' else kind


def rejected_override(name: str, default: Any, given: Optional[Parameter]) -> str:
    """Return why a start-up value of a parameter was rejected (type or range)."""
    expected = allowed_values(name, default)
    if given is None:
        return f'{name}: the value given is not {expected}'
    value = given.value
    if given.type_ != Parameter.Type.from_parameter_value(default):
        return f'{name}: {value!r} is {_type_in_words(given.type_)}, expected {expected}'
    return f'{name}: {value!r} is out of range, expected {expected}'


def _type_in_words(type_: Parameter.Type) -> str:
    """Return a parameter type with its article, e.g. 'an integer', 'a string array'."""
    kind = type_.name.lower().replace('_', ' ')
    return ('an ' if kind[0] in 'aeiou' else 'a ') + kind


def check_choice(name: str, value: Any) -> Optional[str]:
    """Return why a value is not one of the parameter's choices, or None."""
    choices = PARAMETERS[name].choices if name in PARAMETERS else ()
    if choices and value not in choices:
        return f'{name}: {value!r} is not one of {list(choices)}'
    return None


def drivable_names(value: Sequence[str]) -> Tuple[str, ...]:
    """Return the class names of a drivable_classes value (blank entries mean none)."""
    return tuple(name.strip() for name in value if name and name.strip())


@dataclass(frozen=True)
class RuntimeSettings:
    """The parameters that apply on the next frame; replaced as a whole on every change."""

    drivable_classes: Tuple[str, ...] = ()
    overlay_alpha: float = 0.5
    publish_color: bool = True
    publish_overlay: bool = True
    publish_confidence: bool = True
    expected_rate: float = 0.0
    publish_drivable_grid: bool = False
    grid: GridConfig = GridConfig()
    horizontal_fov: float = 60.0
    drivable: DrivableConfig = DrivableConfig()

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> 'RuntimeSettings':
        """Build the settings from parameter values (other keys are ignored)."""
        return cls(drivable_classes=drivable_names(values['drivable_classes']),
                   overlay_alpha=float(values['overlay_alpha']),
                   publish_color=bool(values['publish_color']),
                   publish_overlay=bool(values['publish_overlay']),
                   publish_confidence=bool(values['publish_confidence']),
                   expected_rate=float(values['expected_rate']),
                   publish_drivable_grid=bool(values['publish_drivable_grid']),
                   grid=GridConfig(**{field: float(values[f'drivable_grid.{field}'])
                                      for field in GRID_FIELDS}),
                   horizontal_fov=float(values['drivable_grid.horizontal_fov']),
                   drivable=DrivableConfig(
                       min_confidence=int(values['drivable.min_confidence']),
                       connect_to_bottom=bool(values['drivable.connect_to_bottom']),
                       min_area=float(values['drivable.min_area']),
                       close_size=float(values['drivable.close_size']),
                       open_size=float(values['drivable.open_size'])))


def class_parameters(spec: Any) -> List[Parameter]:
    """Return the read-only class parameters describing a ModelSpec."""
    classes = sorted(spec.classes, key=lambda c: c.id)
    colors = [int(v) for c in classes for v in c.color]
    return [Parameter('classes.ids', Parameter.Type.INTEGER_ARRAY, [int(c.id) for c in classes]),
            Parameter('classes.names', Parameter.Type.STRING_ARRAY, [c.name for c in classes]),
            Parameter('classes.colors', Parameter.Type.INTEGER_ARRAY, colors)]


def publish_class_parameters(node: Node, spec: Any) -> None:
    """
    Declare (first time) or update the read-only classes.* parameters from a model spec.

    rclpy has no public way for a node to update its own read-only parameter, so the read-only
    flag is lifted for the duration of the update (``Node._descriptors`` exists in rclpy from
    Humble to Kilted); external ``set_parameters`` calls are still rejected.
    """
    parameters = class_parameters(spec)
    for parameter in parameters:
        if not node.has_parameter(parameter.name):
            descriptor = ParameterDescriptor(
                name=parameter.name, description=CLASS_PARAMETER_INFO[parameter.name],
                read_only=True, type=parameter.type_.value)
            node.declare_parameter(parameter.name, parameter.value, descriptor)
            continue
        descriptor = node._descriptors[parameter.name]
        descriptor.read_only = False
        try:
            results = node.set_parameters([parameter])
        finally:
            descriptor.read_only = True
        if not results[0].successful:
            raise ConfigError(f'{parameter.name}: could not update ({results[0].reason})')


class PairedParameterService(ParameterService):
    """
    rclpy's parameter services, but ``set_parameters`` applies SET_TOGETHER as one change.

    rclpy's ``set_parameters`` service sets the parameters of a request one at a time, so a new
    ``model_path`` with ``drivable_classes`` naming its own classes is refused twice: the model
    does not have the old drivable classes, the old model does not have the new ones. Here the
    members of SET_TOGETHER in one request are set atomically, at the place of the first of
    them, and share one result; every other parameter is still set on its own, in order, as
    ``ros2 param set`` and ``ros2 param load`` expect. Overrides the service callback of
    ``rclpy.parameter_service.ParameterService`` (same name from Humble to Kilted).
    """

    def __init__(self, node: Node) -> None:
        """Create the six parameter services of node."""
        self._node_ref = weakref.ref(node)
        super().__init__(node)

    def _set_parameters_callback(self, request: SetParameters.Request,
                                 response: SetParameters.Response) -> SetParameters.Response:
        node = self._node_ref()
        parameters = [Parameter.from_parameter_msg(p) for p in request.parameters]
        together = [i for i, p in enumerate(parameters) if p.name in SET_TOGETHER]
        if len({parameters[i].name for i in together}) < 2:
            together = []
        results: Dict[int, SetParametersResult] = {}
        for index in range(len(parameters)):
            if index in results:
                continue
            batch = together if index in together else [index]
            try:
                result = node.set_parameters_atomically([parameters[i] for i in batch])
            except ParameterNotDeclaredException as error:
                result = SetParametersResult(successful=False, reason=str(error))
            results.update({i: result for i in batch})
        response.results = [results[i] for i in range(len(parameters))]
        return response
