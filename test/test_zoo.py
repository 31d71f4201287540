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

"""Model zoo names, input sizes and checkpoint formats (the networks are tested in export)."""

import pytest
import torch

from seg_perception.core.errors import ModelLoadError
from seg_perception.models.zoo import (ARCHITECTURES, check_input_size, create_model,
                                       load_checkpoint, nearest_valid_size, resolve_backbone,
                                       ZooError)


def test_every_family_is_registered():
    """The six families of the issue are in the zoo, each with its default backbone."""
    assert set(ARCHITECTURES) == {'deeplabv3', 'deeplabv3plus', 'pspnet', 'unet', 'fcn',
                                  'lraspp'}
    for arch, info in ARCHITECTURES.items():
        assert resolve_backbone(arch) == (arch, info.default_backbone)


def test_unknown_names_list_the_choices():
    """Unknown architectures and backbones name the valid choices."""
    with pytest.raises(ZooError, match=r"unknown architecture 'segnet'.*'unet'"):
        resolve_backbone('segnet')
    with pytest.raises(ZooError, match=r"unknown backbone 'resnet18' for fcn.*'resnet101'"):
        resolve_backbone('fcn', 'resnet18')


@pytest.mark.parametrize('arch,size,nearest', [
    ('unet', (360, 480), (352, 480)),
    ('deeplabv3plus', (100, 130), (96, 128)),
    ('pspnet', (360, 482), (360, 480)),
    ('lraspp', (361, 479), (361, 479)),
    ('unet', (5, 5), (32, 32)),
])
def test_nearest_valid_size(arch, size, nearest):
    """The nearest valid size is a multiple of what the architecture needs, never zero."""
    assert nearest_valid_size(arch, None, *size) == nearest
    if size != nearest:
        with pytest.raises(ZooError, match=f'nearest valid size is {nearest[0]}x{nearest[1]}'):
            check_input_size(arch, None, *size)
    else:
        check_input_size(arch, None, *size)


def test_non_positive_size():
    """Zero or negative sizes are refused."""
    with pytest.raises(ZooError, match='must be positive'):
        check_input_size('lraspp', None, 0, 480)


@pytest.mark.parametrize('wrap', [None, 'model', 'state_dict'])
def test_checkpoint_formats(wrap, tmp_path):
    """A bare state dict or one under 'model'/'state_dict' loads, fp16 weights included."""
    torch.manual_seed(1)
    trained = create_model('lraspp', num_classes=4)
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in trained.state_dict().items()}
    path = tmp_path / 'ckpt.pt'
    torch.save(state if wrap is None else {wrap: state, 'epoch': 3}, path)
    loaded = create_model('lraspp', num_classes=4, weights=str(path))
    for key, value in loaded.state_dict().items():
        assert value.dtype == trained.state_dict()[key].dtype
        torch.testing.assert_close(value, state[key].to(value.dtype))


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    """A checkpoint holding something else than a state dict is named."""
    path = tmp_path / 'list.pt'
    torch.save([1, 2, 3], path)
    with pytest.raises(ModelLoadError, match='list.pt: expected a state dict'):
        create_model('lraspp', num_classes=4, weights=str(path))


def test_undilated_lraspp_takes_the_dilated_weights_and_predicts_from_one_32nd():
    """The undilated backbone loads a dilated checkpoint; its last stage runs at 1/32, not 1/16."""
    torch.manual_seed(2)
    dilated = create_model('lraspp', num_classes=5)
    undilated = create_model('lraspp', 'mobilenet_v3_large_undilated', num_classes=5)
    undilated.load_state_dict(dilated.state_dict())
    image = torch.randn(1, 3, 96, 128)
    for model, stride in ((dilated, 16), (undilated, 32)):
        model.eval()
        features = model.inner.backbone(image)
        assert features['high'].shape[-2:] == (96 // stride, 128 // stride)
        assert features['low'].shape[-2:] == (96 // 8, 128 // 8)
        with torch.no_grad():
            assert model(image).shape == (1, 5, 96, 128)


def test_a_checkpoint_of_another_backbone_is_refused_even_where_the_weights_fit(tmp_path):
    """best.pt records its backbone: loading it as the other MobileNetV3 needs other_backbone."""
    dilated = create_model('lraspp', num_classes=4)
    path = tmp_path / 'best.pt'
    torch.save({'model': dilated.state_dict(), 'arch': 'lraspp',
                'backbone': 'mobilenet_v3_large'}, path)
    refusal = ("best.pt: checkpoint was trained with backbone 'mobilenet_v3_large', this model "
               "is 'mobilenet_v3_large_undilated'")
    with pytest.raises(ModelLoadError, match=refusal):
        create_model('lraspp', 'mobilenet_v3_large_undilated', num_classes=4, weights=str(path))
    undilated = create_model('lraspp', 'mobilenet_v3_large_undilated', num_classes=4)
    load_checkpoint(undilated, str(path), other_backbone=True)
    for key, value in undilated.state_dict().items():
        assert torch.equal(value, dilated.state_dict()[key]), key
