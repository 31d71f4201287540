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

"""Static INT8 export: the reported label agreement is the one measured, calibration sources."""

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import SAMPLES
from seg_perception.core.errors import DataError
from seg_perception.io.images import evenly_spaced
from seg_perception.models.calibration import load_calibration_images
from seg_perception.models.export import export_model
from seg_perception.models.quantize import make_quantizer
from test_export import HEIGHT, make_spec, model_with_real_statistics, torch_normalize, WIDTH

SAMPLE_IMAGES = f'{SAMPLES}/images'


def run_labels(path: str, images) -> np.ndarray:
    """Return the labels a uint8-NHWC model gives for RGB images resized to its input size."""
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    resized = [cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
               for image in images]
    return np.concatenate([session.run(None, {'input': r[None]})[0] for r in resized])


def test_int8_export_reports_the_measured_agreement(camvid_samples, tmp_path):
    """The summary's agreement equals fp32 vs INT8 labels measured on the deployed graphs."""
    frames = np.stack([cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
                       for _, rgb, _ in camvid_samples])
    spec = make_spec('unet-resnet18', input_dtype='uint8', input_layout='nhwc',
                     output_kind='labels')
    model = model_with_real_statistics('unet', 'resnet18', torch_normalize(frames, spec))
    images = load_calibration_images(SAMPLE_IMAGES, limit=4)
    assert len(images) == 4 and images[0].shape == (360, 480, 3)

    fp32_path, int8_path = str(tmp_path / 'fp32.onnx'), str(tmp_path / 'int8.onnx')
    fp32 = export_model(model, spec, fp32_path)
    int8 = export_model(model, spec, int8_path, quantizer=make_quantizer(images))

    assert int8.precision == 'int8' and int8.calibration_images == 4
    measured = np.mean(run_labels(fp32_path, images) == run_labels(int8_path, images))
    assert int8.label_agreement == pytest.approx(measured, abs=0.005)
    assert f'{100 * int8.label_agreement:.2f} %' in int8.line()
    # weights are stored as int8: the file shrinks to about a quarter
    assert int8.file_bytes < 0.4 * fp32.file_bytes
    ops = [node.op_type for node in onnx.load(int8_path).graph.node]
    assert ops.count('DequantizeLinear') >= ops.count('Conv') > 0
    # the input adapter and the argmax stay float: labels come from float logits
    assert ops[:2] == ['Cast', 'Mul'] or ops[:3] == ['Cast', 'Transpose', 'Mul']
    assert ops[-2:] == ['ArgMax', 'Cast']


@pytest.fixture(scope='module')
def image_bag(camvid_samples, tmp_path_factory):
    """Write an MCAP bag with five CamVid frames on an rgb8 and a bgr8 image topic."""
    from seg_perception.io.bags import BagWriter, IMAGE, make_header, make_image
    path = tmp_path_factory.mktemp('bags') / 'frames.mcap'
    with BagWriter(str(path)) as writer:
        writer.add_topic('/cam/rgb', IMAGE)
        writer.add_topic('/cam/bgr', IMAGE)
        for index, (_, rgb, _) in enumerate(camvid_samples[:5]):
            stamp = 1_000_000_000 + index * 100_000_000
            header = make_header(writer.store, stamp, 'camera')
            writer.write('/cam/rgb', stamp, make_image(writer.store, rgb, 'rgb8', header))
            writer.write('/cam/bgr', stamp,
                         make_image(writer.store, rgb[..., ::-1], 'bgr8', header))
    return str(path)


@pytest.mark.parametrize('topic', ['/cam/rgb', '/cam/bgr'])
def test_bag_calibration_images(topic, image_bag, camvid_samples):
    """Calibration frames from a bag topic are the recorded frames, RGB, spread evenly."""
    images = load_calibration_images(image_bag, limit=3, topic=topic)
    expected = [camvid_samples[i][1] for i in evenly_spaced(5, 3)]
    assert len(images) == 3
    for got, want in zip(images, expected):
        np.testing.assert_array_equal(got, want)


def test_bag_with_several_image_topics_needs_a_topic(image_bag):
    """Refuse two image topics without --calib-topic, naming both."""
    with pytest.raises(DataError, match=r"several image topics \['/cam/bgr', '/cam/rgb'\]"):
        load_calibration_images(image_bag, limit=3)


def test_calibration_source_errors(tmp_path):
    """A missing source or a non-positive count is refused with the path in the message."""
    with pytest.raises(DataError, match='calibration source not found'):
        load_calibration_images(str(tmp_path / 'nowhere'))
    with pytest.raises(DataError, match='must be positive'):
        load_calibration_images(SAMPLE_IMAGES, limit=0)
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    with pytest.raises(DataError, match='cannot decode: .*broken.png'):
        load_calibration_images(str(tmp_path))


def test_evenly_spaced():
    """Indices cover the first and last item and never repeat."""
    assert evenly_spaced(3, 5) == [0, 1, 2]
    assert evenly_spaced(100, 4) == [0, 33, 66, 99]
    assert len(set(evenly_spaced(1000, 32))) == 32


def test_letterbox_calibration_feeds_what_the_node_feeds(camvid_samples):
    """A letterbox model calibrates on letterboxed frames (padded, not stretched)."""
    from seg_perception.core.preprocess import Preprocessor
    from seg_perception.models.graph_io import CORE_INPUT_NAME
    from seg_perception.models.quantize import make_calibration_reader

    spec = make_spec('lraspp', input_dtype='uint8', input_layout='nhwc', output_kind='labels',
                     input_height=128, input_width=128, resize_mode='letterbox')
    image = camvid_samples[0][1]  # 480x360: letterboxed into 128x128 with bands top and bottom
    tensor = make_calibration_reader([image], spec).get_next()[CORE_INPUT_NAME]
    deployed, geometry = Preprocessor(spec)(image, 'rgb8')
    assert geometry.content_top > 0
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    expected = ((deployed[0] / np.float32(255) - mean) / std).transpose(2, 0, 1)[None]
    assert tensor.shape == expected.shape == (1, 3, 128, 128)
    # pixels equal up to the uint8 rounding of the deployed input and of its mean-color padding
    np.testing.assert_allclose(tensor, expected, atol=0.025)
    assert np.abs(tensor[0, :, :geometry.content_top]).max() < 1e-6
