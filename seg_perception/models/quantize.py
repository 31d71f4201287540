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
Static INT8 quantization (QDQ, per-channel weights) with ONNX Runtime's quantization tool.

Only the float core graph (normalized NCHW in, logits out) is quantized; the uint8 normalization
and the argmax are spliced around it afterwards by :mod:`seg_perception.models.graph_io`, so the
label map comes from float logits (a quantized ArgMax would turn near-ties into ties) and the
input scaling stays exact. Activations are uint8 and weights int8 (the U8S8 kernels that use
VNNI/AMX on x86), calibrated with MinMax on real images.

After quantizing, the fp32 and INT8 core graphs run on the calibration images and the share of
identical labels is reported: on an untrained model it can be low, on a trained model it should
be close to 1.
"""

import os
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from seg_perception.core.errors import one_line, SegPerceptionError
from seg_perception.core.spec import ModelSpec
from seg_perception.models.calibration import to_model_input
from seg_perception.models.graph_io import CORE_INPUT_NAME, CORE_OUTPUT_NAME


QUANTIZE_CHOICES = ('int8',)
CALIBRATION_METHODS = ('minmax', 'entropy', 'percentile')
DEFAULT_CALIBRATION_METHOD = 'minmax'


class QuantizeError(SegPerceptionError):
    """Quantization failed or was asked for with unusable calibration data."""


def make_calibration_reader(images: Sequence[np.ndarray], spec: ModelSpec):
    """Return an ONNX Runtime CalibrationDataReader feeding the images to the core graph."""
    from onnxruntime.quantization import CalibrationDataReader

    class ImageCalibrationReader(CalibrationDataReader):
        """Yield one normalized 1 x 3 x H x W image per call, then None."""

        def __init__(self) -> None:
            self.position = 0

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            if self.position >= len(images):
                return None
            image = images[self.position]
            self.position += 1
            return {CORE_INPUT_NAME: to_model_input(image, spec)}

        def rewind(self) -> None:
            self.position = 0

    return ImageCalibrationReader()


def quantize_core(core, spec: ModelSpec, images: Sequence[np.ndarray],
                  method: str = DEFAULT_CALIBRATION_METHOD, per_channel: bool = True):
    """Return the core graph quantized to static QDQ INT8, calibrated on ``images``."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static, QuantType
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not images:
        raise QuantizeError('INT8 quantization needs at least one calibration image')
    if method not in CALIBRATION_METHODS:
        raise QuantizeError(f'unknown calibration method {method!r}; choose one of '
                            f'{list(CALIBRATION_METHODS)}')
    calibrate_method = {'minmax': CalibrationMethod.MinMax,
                        'entropy': CalibrationMethod.Entropy,
                        'percentile': CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(prefix='seg_perception_quant_') as folder:
        float_path = os.path.join(folder, 'float.onnx')
        prepared_path = os.path.join(folder, 'prepared.onnx')
        quantized_path = os.path.join(folder, 'int8.onnx')
        onnx.save(core, float_path)
        # shape inference + ORT graph optimizations (BN folding) before calibration
        quant_pre_process(float_path, prepared_path, skip_symbolic_shape=False)
        try:
            quantize_static(prepared_path, quantized_path,
                            make_calibration_reader(images, spec),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=calibrate_method,
                            extra_options={'ActivationSymmetric': False,
                                           'WeightSymmetric': True})
        except Exception as error:  # noqa: BLE001 - the quantizer raises many types
            raise QuantizeError(f'{spec.architecture}: ONNX Runtime quantization failed '
                                f'({one_line(error)})'
                                ) from None
        return onnx.load(quantized_path)


def label_agreement(float_core, int8_core, spec: ModelSpec,
                    images: Sequence[np.ndarray], threads: int = 2) -> float:
    """Return the share of pixels where the fp32 and INT8 core graphs give the same label."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sessions = [ort.InferenceSession(proto.SerializeToString(), options,
                                     providers=['CPUExecutionProvider'])
                for proto in (float_core, int8_core)]
    same = total = 0
    for image in images:
        feed = {CORE_INPUT_NAME: to_model_input(image, spec)}
        labels = [session.run([CORE_OUTPUT_NAME], feed)[0].argmax(1) for session in sessions]
        same += int(np.count_nonzero(labels[0] == labels[1]))
        total += labels[0].size
    return same / total


def make_quantizer(images: List[np.ndarray], method: str = DEFAULT_CALIBRATION_METHOD,
                   per_channel: bool = True) -> Callable[[object, ModelSpec],
                                                         Tuple[object, dict]]:
    """
    Return the ``quantizer`` hook of :func:`export_model` for calibration ``images``.

    The hook quantizes the float core graph and returns it with the summary fields
    ``label_agreement`` and ``calibration_images``.
    """
    def quantizer(core, spec: ModelSpec):
        int8_core = quantize_core(core, spec, images, method, per_channel)
        agreement = label_agreement(core, int8_core, spec, images)
        return int8_core, {'label_agreement': agreement, 'calibration_images': len(images)}

    return quantizer
