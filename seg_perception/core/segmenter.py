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
Segmenter: one call from a camera image to a :class:`SegResult`; owns a backend.

``Segmenter(model_path).process(image, encoding='rgb8')`` preprocesses per the model's spec, runs
the backend, and returns labels and the drivable mask at the image's own size, plus confidence,
colors and an overlay when asked, with per-stage timings in milliseconds. Per-pixel work after
inference (drivable mask, colors) runs at the smaller of model and camera resolution and is then
upscaled with nearest-neighbour sampling, which gives the same result as running it at camera
size (see :mod:`seg_perception.core.drivable`).
"""

from dataclasses import dataclass, field
import functools
import logging
import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from seg_perception.core.backends import create_backend
from seg_perception.core.colorize import blend, colorize, DEFAULT_ALPHA, palette_lut
from seg_perception.core.drivable import drivable_mask, DrivableConfig
from seg_perception.core.errors import InputError, ModelLoadError, SpecError
from seg_perception.core.imagecodec import check_array, to_rgb
from seg_perception.core.postprocess import Postprocessor
from seg_perception.core.preprocess import Geometry, Preprocessor
from seg_perception.core.resources import default_model_path
from seg_perception.core.spec import is_number, load_spec, ModelSpec


LOGGER = logging.getLogger('seg_perception')
STAGES = ('preprocess', 'infer', 'postprocess', 'drivable', 'colorize', 'total')


def check_drivable_config(config: Optional[DrivableConfig]) -> DrivableConfig:
    """Return ``config`` (None gives the defaults); anything else raises InputError."""
    if config is None:
        return DrivableConfig()
    if not isinstance(config, DrivableConfig):
        raise InputError(f'drivable_config must be a DrivableConfig, got '
                         f'{type(config).__name__} {config!r}', 'bad_parameter')
    return config


def check_overlay_alpha(alpha: Any) -> float:
    """Return the overlay weight as a float; anything but a number in [0, 1] raises InputError."""
    if not is_number(alpha) or not 0.0 <= alpha <= 1.0:
        raise InputError(f'overlay_alpha {alpha!r} must be a number in [0, 1]', 'bad_parameter')
    return float(alpha)


PerFrame = Union[bool, Sequence[bool]]


def per_frame(flag: PerFrame, count: int, argument: str) -> List[bool]:
    """Return one flag per frame from one flag for all or a sequence of ``count`` flags."""
    if isinstance(flag, (bool, int, np.bool_, np.integer)):
        return [bool(flag)] * count
    try:
        flags = [bool(value) for value in flag]
    except TypeError:
        flags = []
    if isinstance(flag, str) or len(flags) != count:
        raise InputError(f'{argument} must be a bool or {count} bools (one per frame), got '
                         f'{flag!r}', 'bad_parameter')
    return flags


def class_names(names: Any, argument: str = 'drivable_classes') -> Tuple[str, ...]:
    """Return class names as a tuple (one string is one name); other types raise InputError."""
    if isinstance(names, str):
        return (names,)
    try:
        result = tuple(names)
    except TypeError:  # not iterable
        result = None
    if result is None or not all(isinstance(n, str) for n in result):
        raise InputError(f'{argument} must be a list of class names (strings), got '
                         f'{names!r}', 'bad_parameter')
    return result


@dataclass
class SegResult:
    """
    What :meth:`Segmenter.process` returns; every map has the input image's height and width.

    ``labels``: uint8 class ids (255 = unlabeled); ``drivable``: uint8 0/255; ``confidence``:
    uint8 softmax probability x 255 of the winning class (logits models, when asked); ``color`` and
    ``overlay``: HxWx3 uint8 RGB (when asked); ``timings``: milliseconds per stage (``preprocess``,
    ``infer``, ``postprocess``, ``drivable``, ``colorize``, ``total``). The arrays are new for
    every call, so results can be kept or handed to other threads.
    """

    labels: np.ndarray
    drivable: np.ndarray
    confidence: Optional[np.ndarray] = None
    color: Optional[np.ndarray] = None
    overlay: Optional[np.ndarray] = None
    timings: Dict[str, float] = field(default_factory=dict)


class OutputStages:
    """
    Everything after inference: labels, drivable mask, confidence, colors and overlay.

    Separate from :class:`Segmenter` so ``seg-perception bench core`` times exactly this code
    without a model.
    """

    def __init__(self, spec: ModelSpec, drivable_config: Optional[DrivableConfig] = None) -> None:
        self.spec = spec
        self.postprocessor = Postprocessor(spec)
        self.lut = palette_lut(spec.palette())
        self.drivable_config = check_drivable_config(drivable_config)

    def run(self, output: np.ndarray, geometry: Geometry, drivable_ids: Sequence[int],
            confidence: bool = False, color: bool = False,
            overlay_rgb: Optional[np.ndarray] = None,
            overlay_alpha: float = DEFAULT_ALPHA,
            on_labels: Optional[Callable[[np.ndarray], None]] = None) -> SegResult:
        """
        Return a SegResult (timings for postprocess, drivable, colorize) from a model output.

        ``on_labels(labels)`` is called as soon as the source-size labels exist, before the
        drivable mask and colors (the node publishes ``~/labels`` there); its time is not in the
        stage timings.
        """
        post = self.postprocessor
        clock = time.perf_counter
        start = clock()
        gate = self.drivable_config.min_confidence > 0
        small_labels, small_scores = post.decode(output, geometry, confidence or gate)
        labels = post.to_source(small_labels, geometry)
        scores = (post.to_source(small_scores, geometry)
                  if confidence and small_scores is not None else None)
        small = (small_labels.shape[0] <= geometry.source_height
                 and small_labels.shape[1] <= geometry.source_width)
        after_post = clock()
        if on_labels is not None:
            on_labels(labels)
        before_drivable = clock()
        if small:
            mask = post.to_source(drivable_mask(small_labels, drivable_ids, small_scores,
                                                config=self.drivable_config), geometry)
        else:
            full_scores = scores
            if full_scores is None and small_scores is not None:
                full_scores = post.to_source(small_scores, geometry)
            mask = drivable_mask(labels, drivable_ids, full_scores, config=self.drivable_config)
        after_drivable = clock()
        colors = blended = None
        if color or overlay_rgb is not None:
            colors = colorize(labels, self.lut)
            if overlay_rgb is not None:
                blended = blend(overlay_rgb, colors, labels, overlay_alpha)
        end = clock()
        timings = {'postprocess': (after_post - start) * 1e3,
                   'drivable': (after_drivable - before_drivable) * 1e3,
                   'colorize': (end - after_drivable) * 1e3}
        return SegResult(labels=labels, drivable=mask, confidence=scores,
                         color=colors if color else None, overlay=blended, timings=timings)


class Segmenter:
    """
    Semantic segmentation of camera images with one model; ROS-free.

    ``model_path`` empty or None takes the bundled default model. ``backend`` is ``auto``,
    ``onnxruntime``, ``tensorrt`` or ``torch``; ``device``, ``precision``, ``num_threads`` and
    ``engine_cache_dir`` go to the backend; ``trust_code`` lets the torch backend load files that
    run code when loaded (TorchScript, ``.pt2``), for files the caller trusts; ``max_batch`` is the
    largest batch :meth:`process_batch` will be given (a TensorRT engine built from an ONNX gets an
    optimization profile for it; 0 = not said). ``drivable_classes``
    (names) overrides the spec's drivable classes. :meth:`process` is not thread-safe (buffers
    are reused); use one Segmenter per thread.
    """

    def __init__(self, model_path: Optional[str] = None, backend: str = 'auto',
                 device: str = '', precision: str = 'fp32', num_threads: int = 0,
                 engine_cache_dir: str = '', drivable_classes: Optional[Iterable[str]] = None,
                 drivable_config: Optional[DrivableConfig] = None,
                 trust_code: bool = False, max_batch: int = 0) -> None:
        if model_path is not None and not isinstance(model_path, (str, os.PathLike)):
            raise ModelLoadError(f'model_path must be a file path, got '
                                 f'{type(model_path).__name__} {model_path!r}')
        drivable_config = check_drivable_config(drivable_config)
        self.model_path = model_path or default_model_path()
        self.backend = create_backend(backend, self.model_path, device=device,
                                      precision=precision, num_threads=num_threads,
                                      engine_cache_dir=engine_cache_dir, trust_code=trust_code,
                                      max_batch=max_batch)
        try:
            self.spec = load_spec(self.model_path, self.backend.metadata())
            self._check_backend_input()
            self._pre = Preprocessor(self.spec)
            self._batch: Optional[np.ndarray] = None
            self.last_batch_ms = 0.0
            self._stages = OutputStages(self.spec, drivable_config)
            self.drivable_classes = (drivable_classes if drivable_classes is not None
                                     else self.spec.drivable_classes)
        except BaseException:
            self.backend.close()
            raise
        self._warn_if_gate_cannot_apply()
        self.overlay_alpha = DEFAULT_ALPHA
        self._ids_cache: Dict[Tuple[str, ...], List[int]] = {}

    # -- configuration ---------------------------------------------------------------------------
    @property
    def drivable_classes(self) -> List[str]:
        """Return the names of the classes the drivable mask is made of."""
        return list(self._drivable_classes)

    @drivable_classes.setter
    def drivable_classes(self, names: Iterable[str]) -> None:
        names = list(class_names(names))
        self._drivable_ids = self.spec.class_ids(names)  # SpecError for unknown names
        self._drivable_classes = names

    @property
    def overlay_alpha(self) -> float:
        """Return the default weight of the class colors in the overlay, in [0, 1]."""
        return self._overlay_alpha

    @overlay_alpha.setter
    def overlay_alpha(self, alpha: float) -> None:
        self._overlay_alpha = check_overlay_alpha(alpha)

    @property
    def drivable_config(self) -> DrivableConfig:
        """Return the drivable mask clean-up parameters."""
        return self._stages.drivable_config

    @drivable_config.setter
    def drivable_config(self, config: DrivableConfig) -> None:
        self._stages.drivable_config = check_drivable_config(config)
        self._warn_if_gate_cannot_apply()

    def _warn_if_gate_cannot_apply(self) -> None:
        if self.drivable_config.min_confidence > 0 and not self.spec.gives_confidence:
            LOGGER.warning('%s outputs labels, so there is no confidence: the drivable mask '
                           'ignores min_confidence=%d (export with --output labels_confidence '
                           'or logits to use it)',
                           self.model_path, self.drivable_config.min_confidence)

    def _check_backend_input(self) -> None:
        """Reject a spec whose input contract the loaded model cannot take."""
        spec, backend = self.spec, self.backend
        if backend.input_dtype and backend.input_dtype != spec.input_dtype:
            raise SpecError(f'{spec.source}: field "input_dtype" is {spec.input_dtype!r} but '
                            f'the model input {backend.input_name!r} is {backend.input_dtype}')
        shape = backend.input_shape
        if len(shape) == 4:
            hw = shape[2:] if spec.input_layout == 'nchw' else shape[1:3]
            expected = (spec.input_height, spec.input_width)
            if all(d is not None for d in hw) and tuple(hw) != expected:
                raise SpecError(f'{spec.source}: input size {expected[0]}x{expected[1]} '
                                f'({spec.input_layout}) does not match the model input '
                                f'{list(shape)}')

    def _ids_for(self, names: Optional[Iterable[str]]) -> List[int]:
        if names is None:
            return self._drivable_ids
        key = None
        try:
            key = (names,) if isinstance(names, str) else tuple(names)
            ids = self._ids_cache.get(key)
        except TypeError:  # not iterable, or an unhashable name: class_names says which
            ids = None
        if ids is None:
            key = class_names(names if key is None else key)
            ids = self.spec.class_ids(list(key))
            self._ids_cache[key] = ids
        return ids

    # -- processing ----------------------------------------------------------------------------
    def process(self, image: np.ndarray, encoding: str = 'rgb8', confidence: bool = False,
                color: bool = False, overlay: bool = False,
                drivable_classes: Optional[Iterable[str]] = None,
                overlay_alpha: Optional[float] = None,
                on_labels: Optional[Callable[[np.ndarray], None]] = None) -> SegResult:
        """
        Segment one image given in a sensor_msgs encoding; return a :class:`SegResult`.

        ``confidence`` needs a model with logits output (else it stays None). ``drivable_classes``
        overrides the classes for this call; ``overlay_alpha`` defaults to ``self.overlay_alpha``.
        ``on_labels(labels)`` gets the label map before the drivable mask and colors are made.
        Bad images raise InputError naming what is wrong (reason codes as in
        :mod:`seg_perception.core.imagecodec`).
        """
        clock = time.perf_counter
        start = clock()
        check_array(image, encoding)
        ids = self._ids_for(drivable_classes)
        alpha = (self._overlay_alpha if overlay_alpha is None
                 else check_overlay_alpha(overlay_alpha))
        if on_labels is not None and not callable(on_labels):
            raise InputError(f'on_labels must be callable, got {on_labels!r}', 'bad_parameter')
        tensor, geometry = self._pre(image, encoding)
        after_pre = clock()
        output = self.backend.infer(tensor)
        after_infer = clock()
        rgb = to_rgb(image, encoding) if overlay else None
        result = self._stages.run(output, geometry, ids, confidence=confidence, color=color,
                                  overlay_rgb=rgb, overlay_alpha=alpha, on_labels=on_labels)
        end = clock()
        timings = {'preprocess': (after_pre - start) * 1e3,
                   'infer': (after_infer - after_pre) * 1e3}
        timings.update(result.timings)
        timings['total'] = (end - start) * 1e3
        result.timings = {stage: timings.get(stage, 0.0) for stage in STAGES}
        return result

    @property
    def takes_batches(self) -> bool:
        """Return True when one backend call can run several frames (``export --dynamic``)."""
        limit = self.backend.max_batch
        return limit is None or limit > 1

    def process_batch(self, frames: Sequence[Tuple[np.ndarray, str]],
                      confidence: PerFrame = False, color: PerFrame = False,
                      overlay: PerFrame = False,
                      drivable_classes: Optional[Iterable[str]] = None,
                      overlay_alpha: Optional[float] = None,
                      on_labels: Optional[Callable[[int, np.ndarray], None]] = None
                      ) -> List[SegResult]:
        """
        Segment several ``(image, encoding)`` frames, of any sizes, with one backend call.

        One frame per camera: the frames are preprocessed into one N-image tensor and run in one
        inference when the model takes a batch (:attr:`takes_batches`; batches larger than the
        backend's ``max_batch`` run in several calls), else one after another through the same
        backend. ``confidence``, ``color`` and ``overlay`` are one flag for all frames or one per
        frame (each camera's subscribers differ). Every result is what :meth:`process` gives for
        that frame (its own size, labels, mask); ``timings['infer']`` is the inference time of
        the call that ran it, shared by its frames. ``on_labels(index, labels)`` gets each
        frame's label map as soon as it exists.
        """
        count = len(frames)
        wants = {name: per_frame(flag, count, name) for name, flag in
                 (('confidence', confidence), ('color', color), ('overlay', overlay))}
        if on_labels is not None and not callable(on_labels):
            raise InputError(f'on_labels must be callable, got {on_labels!r}', 'bad_parameter')
        if not self.takes_batches or count <= 1:
            return [self.process(image, encoding, confidence=wants['confidence'][index],
                                 color=wants['color'][index], overlay=wants['overlay'][index],
                                 drivable_classes=drivable_classes, overlay_alpha=overlay_alpha,
                                 on_labels=None if on_labels is None
                                 else functools.partial(on_labels, index))
                    for index, (image, encoding) in enumerate(frames)]
        ids = self._ids_for(drivable_classes)
        alpha = (self._overlay_alpha if overlay_alpha is None
                 else check_overlay_alpha(overlay_alpha))
        for index, (image, encoding) in enumerate(frames):
            check_array(image, encoding, f'frame {index}')
        results: List[SegResult] = []
        first = 0
        for size in self.call_sizes(count):
            indices = range(first, first + size)
            results += self._run_batch(frames, indices, wants, ids, alpha, on_labels)
            first += size
        return results

    def call_sizes(self, count: int) -> List[int]:
        """Return the frames per backend call with which :meth:`process_batch` runs count."""
        limit = (self.backend.max_batch or count) if self.takes_batches else 1
        limit = max(1, limit)
        return [min(limit, count - first) for first in range(0, count, limit)]

    def _run_batch(self, frames: Sequence[Tuple[np.ndarray, str]], indices: range,
                   wants: Dict[str, List[bool]], ids: List[int], alpha: float,
                   on_labels: Optional[Callable[[int, np.ndarray], None]]) -> List[SegResult]:
        """Run frames[indices] in one backend call; see :meth:`process_batch`."""
        clock = time.perf_counter
        start = clock()
        geometries, preprocess_ms = [], []
        fixed = self.backend.input_shape[0] if self.backend.input_shape else None
        # a model with a fixed batch of N takes exactly N: a shorter last call is padded
        batch = self._batch_buffer(max(len(indices), fixed or 0))
        for row, index in enumerate(indices):
            began = clock()
            image, encoding = frames[index]
            tensor, geometry = self._pre(image, encoding, source=f'frame {index}')
            batch[row] = tensor[0]
            geometries.append(geometry)
            preprocess_ms.append((clock() - began) * 1e3)
        before_infer = clock()
        outputs = self.backend.infer(batch)
        infer_ms = (clock() - before_infer) * 1e3
        results = []
        for row, index in enumerate(indices):
            began = clock()
            image, encoding = frames[index]
            rgb = to_rgb(image, encoding) if wants['overlay'][index] else None
            callback = None if on_labels is None else functools.partial(on_labels, index)
            result = self._stages.run(outputs[row:row + 1], geometries[row], ids,
                                      confidence=wants['confidence'][index],
                                      color=wants['color'][index], overlay_rgb=rgb,
                                      overlay_alpha=alpha, on_labels=callback)
            timings = dict(result.timings, preprocess=preprocess_ms[row], infer=infer_ms)
            timings['total'] = (clock() - began) * 1e3 + preprocess_ms[row] + infer_ms
            result.timings = {stage: timings.get(stage, 0.0) for stage in STAGES}
            results.append(result)
        self.last_batch_ms = (clock() - start) * 1e3
        return results

    def _batch_buffer(self, size: int) -> np.ndarray:
        """Return a reused N x <model input> tensor for ``size`` frames."""
        single = self._pre.tensor_shape
        if self._batch is None or self._batch.shape[0] != size:
            self._batch = np.zeros((size,) + single[1:], self._pre.tensor_dtype)
        return self._batch

    def describe(self) -> Dict[str, Any]:
        """Return backend, provider, precision, model path and spec summary."""
        return {'backend': self.backend.name, 'provider': self.backend.provider,
                'precision': self.backend.precision, 'model_path': self.model_path,
                'spec': self.spec.summary(), 'num_classes': self.spec.num_classes,
                'drivable_classes': self.drivable_classes}

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    def __enter__(self) -> 'Segmenter':
        """Return self for use in a ``with`` block."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the backend."""
        self.close()
