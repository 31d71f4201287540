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
ModelSpec: what a model file knows about itself (classes, palette, input and output contract).

An exported ONNX model carries its spec as JSON in the metadata key ``seg_perception.spec``;
an engine or a foreign ONNX takes the same fields from a sidecar ``<model>.yaml``. Class tables
live in ``config/classes/*.yaml``. Every validation error names the file and the field at fault.
"""

from dataclasses import asdict, dataclass, field
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Type

import numpy as np
import yaml

from seg_perception.core.errors import one_line, quoted, SegPerceptionError, SpecError
from seg_perception.core.resources import bundled_yaml, CLASSES_DIR, find_shipped, shipped_names


METADATA_KEY = 'seg_perception.spec'
IGNORE_INDEX = 255
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNEL_ORDERS = ('rgb', 'bgr')
INPUT_DTYPES = ('uint8', 'float32')
INPUT_LAYOUTS = ('nchw', 'nhwc')
OUTPUT_KINDS = ('logits', 'labels', 'labels_confidence')
RESIZE_MODES = ('resize', 'letterbox')
# limits of the files a spec or class table comes from (far above any real one)
MAX_YAML_BYTES = 1 << 20
MAX_YAML_ALIASES = 64
MAX_YAML_DEPTH = 32
MAX_SPEC_BYTES = 1 << 20


@dataclass(frozen=True)
class ClassInfo:
    """One class of a label map: its id (label value), name and RGB display color."""

    id: int
    name: str
    color: Tuple[int, int, int]


class ClassList:
    """What a model spec and a class table derive alike from their ``classes``."""

    classes: List[ClassInfo]

    @property
    def num_classes(self) -> int:
        """Return the number of label ids (and logits channels): max class id + 1."""
        return max(c.id for c in self.classes) + 1

    @property
    def class_names(self) -> List[str]:
        """Return the class names ordered by id."""
        return [c.name for c in sorted(self.classes, key=lambda c: c.id)]


@dataclass
class ModelSpec(ClassList):
    """
    The contract between a model file and the rest of the pipeline.

    ``mean``/``std`` apply to pixels scaled to [0, 1] by dtype (uint8 / 255, uint16 / 65535).
    ``input_dtype='uint8'`` means the normalization is fused into the graph and the model takes
    raw pixels; ``output_kind='labels'`` means argmax is fused and the model returns class ids;
    ``labels_confidence`` means it returns 1 x 2 x H x W uint8: the class ids and the winning
    class's softmax probability x 255 (no float plane leaves the graph).
    """

    classes: List[ClassInfo]
    input_height: int
    input_width: int
    architecture: str = 'unknown'
    dataset: str = ''
    ignore_index: int = IGNORE_INDEX
    drivable_classes: List[str] = field(default_factory=list)
    channel_order: str = 'rgb'
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    input_dtype: str = 'float32'
    input_layout: str = 'nchw'
    output_kind: str = 'logits'
    resize_mode: str = 'resize'
    source: str = '<memory>'

    def __post_init__(self) -> None:
        """Validate every field; errors name ``source`` and the field."""
        self.validate()

    # -- derived views -----------------------------------------------------------------------
    @property
    def gives_confidence(self) -> bool:
        """Return True when the model's output holds a per-pixel confidence."""
        return self.output_kind != 'labels'

    def palette(self) -> np.ndarray:
        """Return a 256x3 uint8 RGB look-up table; ids without a class (255 included) are black."""
        lut = np.zeros((256, 3), np.uint8)
        for c in self.classes:
            lut[c.id] = c.color
        return lut

    def class_ids(self, names: Sequence[str]) -> List[int]:
        """Map class names (case-insensitive) to ids; unknown names raise SpecError."""
        by_name = {c.name.lower(): c.id for c in self.classes}
        unknown = [n for n in names if not isinstance(n, str) or n.lower() not in by_name]
        if unknown:
            raise SpecError(f'{self.source}: unknown class name(s) {unknown}; '
                            f'the model has {self.class_names}')
        return [by_name[n.lower()] for n in names]

    @property
    def drivable_ids(self) -> List[int]:
        """Return the ids of the drivable classes."""
        return self.class_ids(self.drivable_classes)

    def summary(self) -> str:
        """Return a one-line description for logs and diagnostics."""
        return (f'{self.architecture} {self.dataset or ""} {self.num_classes} classes, '
                f'input {self.input_height}x{self.input_width} {self.input_dtype} '
                f'{self.input_layout} {self.channel_order}, output {self.output_kind}, '
                f'drivable {self.drivable_classes}').replace('  ', ' ')

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise SpecError naming the source and field of the first inconsistency."""
        def fail(field_name: str, problem: str) -> None:
            raise SpecError(f'{self.source}: field {field_name!r} {problem}')

        if not isinstance(self.classes, (list, tuple)) or not self.classes:
            fail('classes', 'must be a non-empty list')
        for c in self.classes:
            if not isinstance(c, ClassInfo):
                fail('classes', f'entry {quoted(c)} is not a ClassInfo')
            if not is_int(c.id) or not 0 <= c.id < 255:
                fail('classes', f'id {quoted(c.id)} of {quoted(c.name)} is not an integer in '
                     '0..254')
            if not isinstance(c.name, str) or not c.name.strip():
                fail('classes', f'name {quoted(c.name)} of id {c.id} is not a non-empty string')
            if not is_color(c.color):
                fail('classes', f'color {quoted(c.color)} of {quoted(c.name)} is not 3 integers '
                     'in 0..255')
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            fail('classes', f'has duplicate ids {sorted({i for i in ids if ids.count(i) > 1})}')
        names = [c.name.lower() for c in self.classes]
        if len(set(names)) != len(names):
            fail('classes', 'has duplicate names')
        if not is_int(self.ignore_index) or not 0 <= self.ignore_index <= 255 \
                or self.ignore_index in ids:
            fail('ignore_index', f'{quoted(self.ignore_index)} must be an integer in 0..255 and '
                 'not a class id')
        for name, value in (('input_height', self.input_height),
                            ('input_width', self.input_width)):
            if not is_int(value) or value <= 0:
                fail(name, f'must be a positive integer, got {quoted(value)}')
        for name, value in (('architecture', self.architecture), ('dataset', self.dataset)):
            if not isinstance(value, str):
                fail(name, f'must be a string, got {quoted(value)}')
        for name, value, choices in (('channel_order', self.channel_order, CHANNEL_ORDERS),
                                     ('input_dtype', self.input_dtype, INPUT_DTYPES),
                                     ('input_layout', self.input_layout, INPUT_LAYOUTS),
                                     ('output_kind', self.output_kind, OUTPUT_KINDS),
                                     ('resize_mode', self.resize_mode, RESIZE_MODES)):
            if value not in choices:
                fail(name, f'is {quoted(value)}; choose one of {list(choices)}')
        for name, value in (('mean', self.mean), ('std', self.std)):
            if (not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 3
                    or not all(is_number(v) and math.isfinite(v) for v in value)):
                fail(name, f'must be 3 finite numbers, got {quoted(value)}')
        if any(s <= 0 for s in self.std):
            fail('std', f'must be positive, got {list(self.std)}')
        problem = check_names(self.drivable_classes, {c.name.lower() for c in self.classes},
                              'the model')
        if problem:
            fail('drivable_classes', problem)

    # -- (de)serialization -------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON/YAML-friendly dict (the inverse of from_dict)."""
        data = asdict(self)
        data.pop('source')
        data['classes'] = [{'id': c.id, 'name': c.name, 'color': list(c.color)}
                           for c in self.classes]
        data['mean'] = list(self.mean)
        data['std'] = list(self.std)
        return data

    def to_json(self) -> str:
        """Return the compact JSON stored in ONNX metadata."""
        return json.dumps(self.to_dict(), separators=(',', ':'))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = '<memory>') -> 'ModelSpec':
        """Build a spec from a dict; ``classes`` may be a list or a path to a class table."""
        if not isinstance(data, Mapping):
            raise SpecError(f'{source}: expected a mapping of spec fields, got '
                            f'{type(data).__name__}')
        data = dict(data)
        allowed = {f for f in cls.__dataclass_fields__ if f != 'source'}
        unknown = sorted(set(data) - allowed - {'classes_file'})
        if unknown:
            raise SpecError(f'{source}: unknown field(s) {quoted(unknown)}; '
                            f'known fields {sorted(allowed)}')
        table: Optional[ClassTable] = None
        key = 'classes_file' if 'classes_file' in data else 'classes'
        path = data.pop('classes_file', data.get('classes'))
        if key == 'classes_file' and (not isinstance(path, str) or not path):
            raise SpecError(f'{source}: field {key!r} must be a path, got {quoted(path)}')
        if isinstance(path, str):
            try:
                table = load_class_table(contained_table_path(path, source))
            except SpecError as error:
                raise SpecError(f'{source}: field {key!r}: {error}') from None
        if table is not None:
            data['classes'] = table.classes
            data.setdefault('drivable_classes', table.drivable)
            data.setdefault('dataset', table.name)
            data.setdefault('ignore_index', table.ignore_index)
        for required in ('classes', 'input_height', 'input_width'):
            if required not in data:
                raise SpecError(f'{source}: field {required!r} is missing')
        data['classes'] = parse_classes(data['classes'], source)
        for key in ('mean', 'std'):  # anything but a list of numbers fails validation
            value = data.get(key)
            if isinstance(value, (list, tuple)) and all(is_number(v) for v in value):
                data[key] = tuple(float(v) for v in value)
        if isinstance(data.get('drivable_classes'), str):
            data['drivable_classes'] = [data['drivable_classes']]
        try:
            return cls(source=source, **data)
        except TypeError as error:
            raise SpecError(f'{source}: {one_line(error)}') from None

    @classmethod
    def from_json(cls, text: str, source: str) -> 'ModelSpec':
        """Parse the JSON stored in ONNX metadata."""
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f'{source}: metadata {METADATA_KEY!r} holds {len(text)} characters; a '
                            f'spec is at most {MAX_SPEC_BYTES}')
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f'{source}: metadata {METADATA_KEY!r} is not valid JSON '
                            f'({one_line(error)})') from None
        except RecursionError:
            raise SpecError(f'{source}: metadata {METADATA_KEY!r} is nested too deeply to be a '
                            'model spec') from None
        return cls.from_dict(data, source)

    @classmethod
    def from_yaml(cls, path: str) -> 'ModelSpec':
        """Load a sidecar spec YAML file."""
        return cls.from_dict(read_yaml(path), path)

    def save_yaml(self, path: str) -> None:
        """Write the spec as a sidecar YAML file."""
        with open(path, 'w', encoding='utf-8') as stream:
            yaml.safe_dump(self.to_dict(), stream, sort_keys=False)


@dataclass
class ClassTable(ClassList):
    """A dataset's class table as stored in ``config/classes/*.yaml``."""

    name: str
    classes: List[ClassInfo]
    drivable: List[str]
    ignore_index: int = IGNORE_INDEX
    source_ignore_ids: List[int] = field(default_factory=list)
    source: str = '<memory>'

    def label_lut(self) -> np.ndarray:
        """
        Return a 256-entry uint8 LUT mapping dataset label values to training ids.

        Class ids map to themselves, ``source_ignore_ids`` and unknown values to the ignore index.
        """
        lut = np.full(256, self.ignore_index, np.uint8)
        for c in self.classes:
            lut[c.id] = c.id
        return lut


def parse_classes(raw: Any, source: str) -> List[ClassInfo]:
    """Parse a list of {id, name, color} mappings into ClassInfo, naming the entry at fault."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise SpecError(f"{source}: field 'classes' must be a non-empty list")
    parsed = []
    for index, entry in enumerate(raw):
        if isinstance(entry, ClassInfo):
            parsed.append(entry)
            continue
        if not isinstance(entry, Mapping) or not {'id', 'name', 'color'} <= set(entry):
            raise SpecError(f'{source}: classes[{index}] must have id, name and color, '
                            f'got {quoted(entry)}')
        class_id, name, color = entry['id'], entry['name'], entry['color']
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f'{source}: classes[{index}] name {quoted(name)} must be a non-empty '
                            'string')
        if not is_int(class_id):
            raise SpecError(f'{source}: classes[{index}] ({name}) id {quoted(class_id)} '
                            'must be an integer')
        if not is_color(color):
            raise SpecError(f'{source}: classes[{index}] ({name}) color {quoted(color)} must be 3 '
                            'integers in 0..255')
        parsed.append(ClassInfo(int(class_id), name, tuple(int(v) for v in color)))
    return parsed


def is_int(value: Any) -> bool:
    """Return True for an integer (Python or numpy), False for bool and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Return True for an integer or float (Python or numpy), False for bool and the rest."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_color(value: Any) -> bool:
    """Return True for 3 integers in 0..255 (a list or tuple)."""
    return (isinstance(value, (list, tuple)) and len(value) == 3
            and all(is_int(v) and 0 <= v <= 255 for v in value))


def check_names(names: Any, known: Set[str], owner: str) -> str:
    """Return what is wrong with a list of class names (``known`` in lower case), or ''."""
    if not isinstance(names, (list, tuple)):
        return f'must be a list of class names, got {quoted(names)}'
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        return f'must be class names (strings), got {bad}'
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        return f'names {unknown} are not classes of {owner}'
    return ''


def contained_table_path(path: str, source: str) -> str:
    """
    Return the class table a spec names: a bundled table, or a file next to the spec's file.

    A model file or sidecar may come from anyone: its table path must not reach elsewhere on
    the disk (``/etc/passwd`` would be opened and parsed). A relative path is relative to the
    file that names it; a bare name such as 'camvid' is a bundled table unless that file exists
    there.
    """
    folder = os.path.dirname(os.path.realpath(source)) if os.path.isfile(source) else None
    if folder is not None and not os.path.isabs(path):
        beside = os.path.realpath(os.path.join(folder, path))
        if os.path.isfile(beside) and beside.startswith(folder + os.sep):
            return beside
    bundled = find_shipped(os.path.join(CLASSES_DIR, f'{path}.yaml'))
    if bundled is not None and os.sep not in path and '/' not in path:
        return bundled
    raise SpecError(f'class table {quoted(path)}: a spec names a bundled table '
                    f'({", ".join(available_class_tables())}) or a file next to it '
                    f'({folder or "the spec is not in a file"})')


def resolve_class_table_path(name_or_path: str) -> str:
    """Return the path of a class table given a path or a bundled name such as 'camvid'."""
    return bundled_yaml(CLASSES_DIR, name_or_path, 'class table')


def available_class_tables() -> List[str]:
    """Return the names of the bundled class tables."""
    return shipped_names(CLASSES_DIR)


def load_class_table(name_or_path: str) -> ClassTable:
    """Load and validate a class table (duplicate ids/names/colors, colors out of 0..255)."""
    path = resolve_class_table_path(name_or_path)
    data = read_yaml(path)
    if not isinstance(data, Mapping):
        raise SpecError(f'{path}: expected a mapping with name, classes and drivable')
    classes = parse_classes(data.get('classes'), path)
    ids = [c.id for c in classes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SpecError(f"{path}: field 'classes' has duplicate ids {duplicates}")
    colors = [c.color for c in classes]
    if len(set(colors)) != len(colors):
        raise SpecError(f"{path}: field 'classes' has duplicate colors")

    def fail(field_name: str, problem: str) -> None:
        raise SpecError(f'{path}: field {field_name!r} {problem}')

    name = data.get('name', os.path.splitext(os.path.basename(path))[0])
    if not isinstance(name, str) or not name:
        fail('name', f'must be a non-empty string, got {quoted(name)}')
    drivable = data.get('drivable')
    drivable = [] if drivable is None else drivable
    problem = check_names(drivable, {c.name.lower() for c in classes}, 'the table')
    if problem:
        fail('drivable', problem)
    ignore_index = data.get('ignore_index', IGNORE_INDEX)
    if not is_int(ignore_index) or not 0 <= ignore_index <= 255:
        fail('ignore_index', f'must be an integer in 0..255, got {quoted(ignore_index)}')
    source_ignore_ids = data.get('source_ignore_ids')
    source_ignore_ids = [] if source_ignore_ids is None else source_ignore_ids
    if not isinstance(source_ignore_ids, list) or not all(
            is_int(i) and 0 <= i <= 255 for i in source_ignore_ids):
        fail('source_ignore_ids', f'must be a list of integers in 0..255, got '
             f'{quoted(source_ignore_ids)}')
    table = ClassTable(name=name, classes=classes, drivable=list(drivable),
                       ignore_index=int(ignore_index),
                       source_ignore_ids=[int(i) for i in source_ignore_ids], source=path)
    # validate names, ignore index and drivable classes through a throw-away spec
    ModelSpec(classes=classes, input_height=1, input_width=1, ignore_index=table.ignore_index,
              drivable_classes=table.drivable, source=path)
    return table


def spec_sidecar_path(model_path: str) -> str:
    """Return the sidecar YAML path of a model file (``model.onnx`` -> ``model.yaml``)."""
    return os.path.splitext(model_path)[0] + '.yaml'


def named_sidecar_path(model_path: str) -> str:
    """
    Return the sidecar that names the whole file (``model.engine`` -> ``model.engine.yaml``).

    build-engine writes this one, so an engine built next to its ONNX (``model.onnx`` ->
    ``model.engine``) never puts a spec in ``model.yaml``, which the ONNX would read too.
    """
    return model_path + '.yaml'


def find_sidecar(model_path: str) -> Optional[str]:
    """Return the model's sidecar YAML (``model.engine.yaml``, else ``model.yaml``) or None."""
    for sidecar in (named_sidecar_path(model_path), spec_sidecar_path(model_path)):
        if os.path.isfile(sidecar):
            return sidecar
    return None


def load_spec(model_path: str, metadata: Optional[Mapping[str, str]] = None) -> ModelSpec:
    """Return the spec of a model: the sidecar YAML if present, else the embedded metadata."""
    sidecar = find_sidecar(model_path)
    if sidecar is not None:
        return ModelSpec.from_yaml(sidecar)
    if metadata and METADATA_KEY in metadata:
        return ModelSpec.from_json(metadata[METADATA_KEY], model_path)
    raise SpecError(f'{model_path}: no model spec: the file has no {METADATA_KEY!r} metadata '
                    f'and there is no sidecar {spec_sidecar_path(model_path)} (export with '
                    '`seg-perception export` or write the sidecar)')


class LimitedLoader(yaml.SafeLoader):
    """
    PyYAML's safe loader with limits that a hostile file cannot get past.

    Aliases let a few hundred bytes stand for millions of values (a "billion laughs"); nesting
    makes the composer recurse until Python gives up. Both are refused beyond small numbers that
    no spec, class table or parameter file comes near.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Count aliases and nesting while composing; refuse beyond the limits."""
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f'more than {MAX_YAML_ALIASES} aliases (*name)')
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f'nested deeper than {MAX_YAML_DEPTH} levels')
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def read_yaml(path: str, what: str = 'file', error: Type[SegPerceptionError] = SpecError) -> Any:
    """
    Parse a YAML file with :class:`LimitedLoader`; a bad file raises ``error`` naming it.

    Missing, unreadable, oversized, invalid and hostile (aliases, nesting) files all end in one
    short line. ``what`` says what the file should be (e.g. 'class map'), for the message.
    """
    try:
        with open(path, 'rb') as stream:
            data = stream.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise error(f'{path}: {what} not found') from None
    except OSError as failure:
        raise error(f'{path}: cannot read {what} ({failure.strerror})') from None
    if len(data) > MAX_YAML_BYTES:
        raise error(f'{path}: {what} is larger than {MAX_YAML_BYTES} bytes')
    try:
        return yaml.load(data.decode('utf-8'), Loader=LimitedLoader)  # noqa: S506 - safe loader
    except UnicodeDecodeError:
        raise error(f'{path}: {what} is not UTF-8 text') from None
    except yaml.YAMLError as failure:
        raise error(f'{path}: invalid YAML ({one_line(failure)})') from None
    except RecursionError:
        raise error(f'{path}: invalid YAML (nested too deeply)') from None
