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
Torch model zoo (the ``export`` extra): DeepLabV3/V3+, PSPNet, U-Net, FCN and LRASPP.

Networks come from torchvision and segmentation-models-pytorch; nothing here downloads weights
(``weights=None``, ``encoder_weights=None``). Every model returns logits ``N x C x H x W`` at the
input size. Input sizes an architecture cannot take are rejected up front with the nearest valid
size in the message (no silent padding: the exported graph has exactly the size asked for).
"""

from dataclasses import dataclass
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from seg_perception.core.errors import ModelLoadError, one_line, quoted, SegPerceptionError
from seg_perception.core.spec import read_yaml


class ZooError(SegPerceptionError):
    """An unknown architecture/backbone, an invalid input size or a mismatching checkpoint."""


@dataclass(frozen=True)
class ArchInfo:
    """What the zoo knows about one architecture."""

    library: str
    backbones: Tuple[str, ...]
    default_backbone: str
    # input height and width must be multiples of this (1 = any size)
    size_multiple: Dict[str, int]


# torchvision dilates MobileNetV3's last stage for segmentation (features at 1/16); without the
# dilation they stay at 1/32, where the 960-channel 1x1 convolutions see a quarter of the
# positions. The weights have the same names and shapes, so either loads the other's checkpoint.
UNDILATED_MOBILENET = 'mobilenet_v3_large_undilated'

ARCHITECTURES: Dict[str, ArchInfo] = {
    'deeplabv3': ArchInfo('torchvision', ('mobilenet_v3_large', 'resnet50'), 'mobilenet_v3_large',
                          {'mobilenet_v3_large': 1, 'resnet50': 1}),
    'deeplabv3plus': ArchInfo('smp', ('mobilenet_v2', 'resnet18', 'resnet50'), 'mobilenet_v2',
                              {'mobilenet_v2': 16, 'resnet18': 16, 'resnet50': 16}),
    'pspnet': ArchInfo('smp', ('resnet18', 'resnet50', 'mobilenet_v2'), 'resnet18',
                       {'resnet18': 8, 'resnet50': 8, 'mobilenet_v2': 8}),
    'unet': ArchInfo('smp', ('resnet18', 'resnet34', 'mobilenet_v2'), 'resnet18',
                     {'resnet18': 32, 'resnet34': 32, 'mobilenet_v2': 32}),
    'fcn': ArchInfo('torchvision', ('resnet50', 'resnet101'), 'resnet50',
                    {'resnet50': 1, 'resnet101': 1}),
    'lraspp': ArchInfo('torchvision', ('mobilenet_v3_large', UNDILATED_MOBILENET),
                       'mobilenet_v3_large',
                       {'mobilenet_v3_large': 1, UNDILATED_MOBILENET: 1}),
}


def split_architecture(name: str) -> Tuple[str, Optional[str]]:
    """Split a spec's architecture ``arch``, ``arch/backbone`` or ``arch-backbone`` (export)."""
    for separator in ('/', '-'):
        arch, found, backbone = name.partition(separator)
        if found:
            return arch, backbone or None
    return name, None


def resolve_backbone(arch: str, backbone: Optional[str] = None) -> Tuple[str, str]:
    """Validate arch/backbone names; return them with the default backbone filled in."""
    if arch not in ARCHITECTURES:
        raise ZooError(f'unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}')
    info = ARCHITECTURES[arch]
    backbone = backbone or info.default_backbone
    if backbone not in info.backbones:
        raise ZooError(f'unknown backbone {backbone!r} for {arch}; choose one of '
                       f'{list(info.backbones)}')
    return arch, backbone


def nearest_valid_size(arch: str, backbone: Optional[str], height: int,
                       width: int) -> Tuple[int, int]:
    """Return the valid (height, width) nearest to the given size for arch/backbone."""
    arch, backbone = resolve_backbone(arch, backbone)
    multiple = ARCHITECTURES[arch].size_multiple[backbone]

    def nearest(value: int) -> int:
        return max(multiple, int(round(value / multiple)) * multiple)

    return nearest(height), nearest(width)


def check_input_size(arch: str, backbone: Optional[str], height: int, width: int) -> None:
    """Reject sizes the architecture cannot take, naming the nearest valid size."""
    arch, backbone = resolve_backbone(arch, backbone)
    multiple = ARCHITECTURES[arch].size_multiple[backbone]
    if height <= 0 or width <= 0:
        raise ZooError(f'input size {height}x{width} must be positive')
    if height % multiple or width % multiple:
        valid_height, valid_width = nearest_valid_size(arch, backbone, height, width)
        raise ZooError(f'{arch}/{backbone} needs height and width that are multiples of '
                       f'{multiple}; {height}x{width} is not, the nearest valid size is '
                       f'{valid_height}x{valid_width}')


def _torchvision_builder(arch: str, backbone: str) -> Callable:
    from torchvision.models import segmentation as tvs
    if backbone == UNDILATED_MOBILENET:
        return _lraspp_undilated_mobilenet_v3
    name = {'deeplabv3': f'deeplabv3_{backbone}', 'fcn': f'fcn_{backbone}',
            'lraspp': f'lraspp_{backbone}'}[arch]
    return getattr(tvs, name)


def _lraspp_undilated_mobilenet_v3(num_classes: int, **unused_weights: object):
    """Return torchvision's LRASPP on a MobileNetV3-Large that is not dilated (no weights)."""
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3

    return _lraspp_mobilenetv3(mobilenet_v3_large(weights=None, dilated=False), num_classes)


def create_model(arch: str, backbone: Optional[str] = None, num_classes: int = 11,
                 weights: Optional[str] = None):
    """
    Return a torch ``nn.Module`` mapping N x 3 x H x W normalized float input to logits.

    ``weights`` is an optional checkpoint path (a state dict, or a dict holding one under
    ``model``/``state_dict``) loaded with ``weights_only=True``.
    """
    arch, backbone = resolve_backbone(arch, backbone)
    if num_classes < 1:
        raise ZooError(f'num_classes must be positive, got {num_classes}')
    info = ARCHITECTURES[arch]
    if info.library == 'torchvision':
        builder = _torchvision_builder(arch, backbone)
        kwargs = {'weights': None, 'weights_backbone': None, 'num_classes': num_classes}
        if arch != 'lraspp':
            kwargs['aux_loss'] = False
        model = _DictOutput(builder(**kwargs))
    else:
        import segmentation_models_pytorch as smp
        cls = {'deeplabv3plus': smp.DeepLabV3Plus, 'pspnet': smp.PSPNet,
               'unet': smp.Unet}[arch]
        model = cls(encoder_name=backbone, encoder_weights=None, classes=num_classes)
    model.arch = arch
    model.backbone = backbone
    model.num_classes = num_classes
    if weights:
        load_checkpoint(model, weights)  # its errors name arch, backbone and class count
    return model


def build_network(architecture: str, num_classes: int, weights: str):
    """
    Build a zoo network with its checkpoint for the core's torch backend (an entry point).

    ``architecture`` is a spec's ``arch``, ``arch/backbone`` or ``arch-backbone``; registered in
    setup.py under ``seg_perception.network_builders`` so the core never imports the zoo.
    """
    arch, backbone = split_architecture(architecture)
    try:
        return create_model(arch, backbone, num_classes=num_classes, weights=weights)
    except ZooError as error:
        raise ModelLoadError(f'{weights}: spec architecture {architecture!r}: {error}') from None


def _DictOutput(inner):  # noqa: N802 - behaves like a class constructor
    """Wrap a torchvision segmentation model (dict output) so it returns plain logits."""
    import torch

    class DictOutput(torch.nn.Module):
        def __init__(self, wrapped: torch.nn.Module) -> None:
            super().__init__()
            self.inner = wrapped

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)['out']

    return DictOutput(inner)


def read_class_bias(path: str, class_ids: Mapping[str, int], num_classes: int) -> List[float]:
    """
    Read a class-bias file (YAML mapping of class name to logit offset); one offset per class.

    A model trained with class-weighted cross-entropy over-predicts the rare classes the weights
    favour; constant per-class offsets added before the argmax take part of that back without
    retraining (post-hoc logit adjustment). ``class_ids`` maps the table's names to their logit
    channels; classes the file does not name get 0.
    """
    data = read_yaml(path, 'class-bias file', ZooError)
    if not isinstance(data, dict) or not data:
        raise ZooError(f'{path}: a class-bias file is a mapping of class name to logit offset, '
                       f'got {quoted(data)}')
    offsets = [0.0] * num_classes
    for name, value in data.items():
        if name not in class_ids:
            raise ZooError(f'{path}: {quoted(name)} is not a class of the table '
                           f'({", ".join(class_ids)})')
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ZooError(f'{path}: the offset of {name} must be a finite number, got '
                           f'{quoted(value)}')
        offsets[class_ids[name]] = float(value)
    return offsets


def with_class_bias(model, offsets: Sequence[float]):
    """Return ``model`` with a constant offset added to each class's logits."""
    import torch

    if len(offsets) != model.num_classes:
        raise ZooError(f'{len(offsets)} class offsets for a model of {model.num_classes} classes')

    class ClassBias(torch.nn.Module):
        def __init__(self, wrapped: torch.nn.Module) -> None:
            super().__init__()
            self.inner = wrapped
            self.register_buffer('offsets', torch.tensor(offsets, dtype=torch.float32)
                                 .view(1, -1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) + self.offsets

    biased = ClassBias(model)
    for name in ('arch', 'backbone', 'num_classes'):
        setattr(biased, name, getattr(model, name))
    return biased


def load_checkpoint(model, path: str, other_backbone: bool = False) -> None:
    """
    Load weights into model; a mismatch reports the differing keys/shapes in one line.

    A checkpoint that records another backbone (best.pt, final.pt) is refused even where the
    weights fit (MobileNetV3 dilated or not), unless ``other_backbone`` (fine-tuning from it).
    """
    import torch

    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f'{path}: checkpoint not found') from None
    except Exception as error:  # noqa: BLE001 - torch raises many types for bad files
        raise ModelLoadError(f'{path}: not a readable torch checkpoint '
                             f'({one_line(error)})'
                             ) from None
    state = checkpoint
    if isinstance(checkpoint, dict):
        for key in ('model', 'state_dict'):
            if key in checkpoint and isinstance(checkpoint[key], dict):
                state = checkpoint[key]
                break
    if not isinstance(state, dict):
        raise ModelLoadError(f'{path}: expected a state dict, got {type(state).__name__}')
    recorded = checkpoint.get('backbone') if isinstance(checkpoint, dict) else None
    ours = getattr(model, 'backbone', None)
    if not other_backbone and isinstance(recorded, str) and ours and recorded != ours:
        raise ModelLoadError(f'{path}: checkpoint was trained with backbone {recorded!r}, this '
                             f'model is {ours!r}')
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape_mismatch = [f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}' for k, v in own.items()
                      if k in state and tuple(state[k].shape) != tuple(v.shape)]

    def show(keys: list) -> str:
        return ', '.join(keys[:3]) + (f' (+{len(keys) - 3} more)' if len(keys) > 3 else '')

    problems = []
    if missing:
        problems.append(f'{len(missing)} missing keys: {show(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys: {show(unexpected)}')
    if shape_mismatch:
        problems.append(f'{len(shape_mismatch)} shape mismatches: {show(shape_mismatch)}')
    if problems:
        arch = getattr(model, 'arch', type(model).__name__)
        raise ModelLoadError(f'{path}: checkpoint does not fit {arch}/'
                             f'{getattr(model, "backbone", "?")} with '
                             f'{getattr(model, "num_classes", "?")} classes: '
                             + '; '.join(problems))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
