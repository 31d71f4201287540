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
Check every inference path this machine has against ONNX Runtime on the CPU, and time it.

Paths: ONNX Runtime CPU (the reference), CUDA EP, TensorRT EP, torch on CUDA (fp32, fp16, the
bundled training checkpoint) and a TensorRT engine built by ``seg-perception build-engine``
(fp32, fp16). A path whose library or GPU is missing is reported as such, not failed. For each:
label agreement with the reference on the CamVid samples, their mIoU, the model-only time
(``backend.infer`` on a preprocessed tensor) and the whole ``Segmenter.process`` at camera size;
medians of ``--repeats`` runs. ``python benchmarks/gpu_check.py --json out.json``.
"""

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from seg_perception.core import Segmenter  # noqa: E402
from seg_perception.core.metrics import ConfusionMatrix  # noqa: E402

SAMPLES = os.path.join(REPO, 'data', 'samples', 'camvid')
ONNX_MODEL = os.path.join(REPO, 'models', 'camvid_lraspp.onnx')
# the bundle's weights; the torch rows run them without the bundle's export-time class bias,
# so their agreement with the bundled ONNX includes that offset
CHECKPOINT = os.path.join(REPO, 'training', 'lraspp_final', 'final.pt')
VOID = 11


def environment() -> Dict[str, Any]:
    """Return versions and devices of the libraries the backends use."""
    info: Dict[str, Any] = {'python': sys.version.split()[0]}
    import onnxruntime
    info['onnxruntime'] = onnxruntime.__version__
    info['onnxruntime_providers'] = onnxruntime.get_available_providers()
    try:
        import torch
        info['torch'] = torch.__version__
        info['cuda_device'] = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                               else None)
    except ImportError:
        info['torch'] = None
    try:
        import tensorrt
        info['tensorrt'] = tensorrt.__version__
    except ImportError as error:
        info['tensorrt'] = f'not importable ({error})'
    return info


def load_samples() -> List[Tuple[np.ndarray, np.ndarray]]:
    """Return the CamVid samples as (RGB, labels with void as 255)."""
    samples = []
    for path in sorted(glob.glob(os.path.join(SAMPLES, 'images', '*.png'))):
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        labels = cv2.imread(os.path.join(SAMPLES, 'labels', os.path.basename(path)),
                            cv2.IMREAD_UNCHANGED)
        samples.append((rgb, np.where(labels == VOID, 255, labels).astype(np.uint8)))
    return samples


def median_ms(function: Callable[[], Any], repeats: int, warmup: int) -> float:
    """Return the median wall time of ``function`` in milliseconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times))


def measure(name: str, model: str, options: Dict[str, Any], samples, reference,
            camera: np.ndarray, repeats: int, warmup: int) -> Dict[str, Any]:
    """Run one path: agreement, mIoU and times; errors are recorded, not raised."""
    row: Dict[str, Any] = {'path': name, 'model': os.path.basename(model), **options}
    try:
        with Segmenter(model, **options) as segmenter:
            row['provider'] = segmenter.backend.provider
            labels = [segmenter.process(rgb).labels for rgb, _ in samples]
            matrix = ConfusionMatrix(segmenter.spec.num_classes)
            for (_, truth), predicted in zip(samples, labels):
                matrix.update(truth, predicted)
            row['miou'] = round(float(matrix.miou()) * 100, 2)
            if reference is not None:
                row['agreement'] = round(float(np.mean(
                    [(a == b).mean() for a, b in zip(labels, reference)])), 5)
            tensor, _ = segmenter._pre(samples[0][0], 'rgb8')  # noqa: SLF001 - model-only time
            tensor = tensor.copy()
            row['infer_ms'] = round(median_ms(lambda: segmenter.backend.infer(tensor), repeats,
                                              warmup), 3)
            row['process_ms'] = round(median_ms(lambda: segmenter.process(camera), repeats,
                                                warmup), 3)
            row['labels'] = labels
    except Exception as error:  # noqa: BLE001 - a path that cannot run is a result
        row['error'] = f'{type(error).__name__}: {error}'
        if os.environ.get('GPU_CHECK_TRACEBACK'):
            traceback.print_exc()
    return row


def build_engines(folder: str) -> List[Tuple[str, str]]:
    """Build engines with ``seg-perception build-engine`` (fp32, and fp16 before TensorRT 11)."""
    import tensorrt

    from seg_perception.tools import build_engine
    engines = []
    precisions = [[]] if int(tensorrt.__version__.split('.')[0]) >= 11 else [[], ['--fp16']]
    for flags in precisions:  # TensorRT 11 has no FP16 flag (strongly typed networks only)
        name = 'tensorrt-' + ('fp16' if flags else 'fp32')
        out = os.path.join(folder, f'{name}.engine')
        parser = argparse.ArgumentParser()
        build_engine.add_arguments(parser)
        args = parser.parse_args([ONNX_MODEL, '--out', out,
                                  '--timing-cache', os.path.join(folder, 'timing.cache')]
                                 + flags)
        build_engine.run(args)
        engines.append((name, out))
    return engines


def main(argv: Optional[List[str]] = None) -> int:
    """Run every available path and print a table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=100)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--camera', default='1280x720', help='camera frame size WxH')
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.camera.split('x'))
    info = environment()
    print(json.dumps(info, indent=1), flush=True)
    samples = load_samples()
    camera = cv2.resize(samples[0][0], (width, height), interpolation=cv2.INTER_LINEAR)
    rows = []
    folder = tempfile.mkdtemp(prefix='gpu_check_')
    checkpoint = os.path.join(folder, 'camvid_lraspp.pt')
    shutil.copy(CHECKPOINT, checkpoint)
    common = (samples, None, camera, args.repeats, args.warmup)
    reference_row = measure('onnxruntime-cpu', ONNX_MODEL, {'device': 'cpu'}, *common)
    rows.append(reference_row)
    reference = reference_row.get('labels')
    common = (samples, reference, camera, args.repeats, args.warmup)
    with Segmenter(ONNX_MODEL, device='cpu') as segmenter:
        segmenter.spec.save_yaml(os.path.join(folder, 'camvid_lraspp.yaml'))
    providers = info['onnxruntime_providers']
    if 'CUDAExecutionProvider' in providers:
        rows.append(measure('onnxruntime-cuda', ONNX_MODEL, {'device': 'cuda:0'}, *common))
    if 'TensorrtExecutionProvider' in providers:
        rows.append(measure('onnxruntime-tensorrt-fp16', ONNX_MODEL,
                            {'device': 'cuda:0', 'precision': 'fp16',
                             'engine_cache_dir': os.path.join(folder, 'trt_cache')}, *common))
    rows.append(measure('torch-cpu', checkpoint, {'device': 'cpu'}, *common))
    if info.get('cuda_device'):
        for precision in ('fp32', 'fp16'):
            rows.append(measure(f'torch-cuda-{precision}', checkpoint,
                                {'device': 'cuda:0', 'precision': precision}, *common))
    if not str(info['tensorrt']).startswith('not importable'):
        try:
            for name, engine in build_engines(folder):
                rows.append(measure(name, engine, {}, *common))
        except Exception as error:  # noqa: BLE001 - report the failed build
            rows.append({'path': 'tensorrt-build', 'error': f'{type(error).__name__}: {error}'})
    for row in rows:
        row.pop('labels', None)
    print(f'\n| path | provider | agreement | mIoU (10 samples) | infer ms | process ms '
          f'({args.camera}) |')
    print('| --- | --- | --- | --- | --- | --- |')
    for row in rows:
        if 'error' in row:
            print(f'| {row["path"]} | error: {row["error"][:200]} | | | | |')
            continue
        print(f'| {row["path"]} | {row["provider"]} | {row.get("agreement", "reference")} | '
              f'{row["miou"]} | {row["infer_ms"]} | {row["process_ms"]} |')
    if args.json:
        with open(args.json, 'w') as stream:
            json.dump({'environment': info, 'rows': rows}, stream, indent=1)
    return 0 if all('error' not in row for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
