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
The TensorRT engine cache, for real without a GPU: keys, atomic entries, races, broken files.

TensorRT itself is needed only to build and deserialize; here the build is a function that
returns bytes, so everything around it (the key, the lock, the sidecar, the checks that catch a
truncated or replaced engine) runs for real, with real processes racing on one cache folder.
"""

import dataclasses
import json
import logging
import os
import subprocess
import sys

import pytest

from seg_perception.core.backends.engine_cache import batch_profile, EngineCache, EngineKey

KEY = EngineKey(onnx_sha256='ab' * 32, tensorrt_version='10.13.0', gpu_name='NVIDIA H200',
                compute_capability='9.0', precision='fp16', input_shape=(1, 360, 480, 3),
                batch_profile=(1, 1, 1), dla_core=-1)

RACE_SCRIPT = r"""
import os, sys, time
from seg_perception.core.backends.engine_cache import EngineCache, EngineKey
key = EngineKey(**{**dict(onnx_sha256='cd' * 32, tensorrt_version='10.13.0', gpu_name='G',
                          compute_capability='8.7', precision='fp32',
                          input_shape=(1, 96, 128, 3))})
folder, builds = sys.argv[1], sys.argv[2]

def build():
    with open(os.path.join(builds, str(os.getpid())), 'w'):
        pass
    time.sleep(1.0)  # long enough for the other process to arrive while this one builds
    return b'engine bytes of ' + str(os.getpid()).encode(), {'precision_built': 'fp32'}

entry, built = EngineCache(folder).get_or_build('model', key, build)
print(built, open(entry.engine_path, 'rb').read().decode())
"""


def test_every_key_field_changes_the_digest_and_nothing_else_does():
    digests = {KEY.digest()}
    for name, value in (('onnx_sha256', 'ef' * 32), ('tensorrt_version', '10.14.0'),
                        ('gpu_name', 'Orin'), ('compute_capability', '8.7'),
                        ('precision', 'int8'), ('input_shape', (None, 360, 480, 3)),
                        ('batch_profile', (1, 4, 4)), ('dla_core', 0)):
        digests.add(dataclasses.replace(KEY, **{name: value}).digest())
    assert len(digests) == 9
    assert dataclasses.replace(KEY).digest() == KEY.digest()


def test_the_batch_profile_follows_max_batch_only_for_a_dynamic_batch():
    dynamic, fixed = (None, 360, 480, 3), (1, 360, 480, 3)
    assert batch_profile(dynamic) == batch_profile(dynamic, 1) == (1, 1, 1)
    assert batch_profile(dynamic, 4) == (1, 4, 4)
    assert batch_profile([None, 3, 96, 128], 6) == (1, 6, 6)  # onnx_summary gives a list
    assert {batch_profile(fixed, n) for n in (0, 1, 4, 8)} == {(1, 1, 1)}


def key_for(input_shape, max_batch):
    """Return the key the TensorRT backend makes for an ONNX input and a max_batch option."""
    fields = {name: getattr(KEY, name) for name in ('onnx_sha256', 'tensorrt_version',
                                                    'gpu_name', 'compute_capability',
                                                    'precision')}
    return EngineKey.for_model(input_shape, max_batch, **fields)


def test_another_max_batch_is_another_engine_and_the_same_one_is_a_hit(tmp_path):
    dynamic, fixed = (None, 360, 480, 3), (1, 360, 480, 3)
    assert len({key_for(dynamic, n).digest() for n in (1, 2, 4, 8)}) == 4
    assert key_for(dynamic, 4).digest() == key_for(dynamic, 4).digest()
    assert key_for(dynamic, 0).digest() == key_for(dynamic, 1).digest()  # 0: batches of 1
    assert len({key_for(fixed, n).digest() for n in (0, 1, 4)}) == 1  # the file decides
    cache, builds = EngineCache(str(tmp_path)), []

    def build(size):
        return lambda: builds.append(size) or (b'engine for %d' % size, {'max_batch': size})

    first, built = cache.get_or_build('model', key_for(dynamic, 4), build(4))
    again, rebuilt = cache.get_or_build('model', key_for(dynamic, 4), build(4))
    other, other_built = cache.get_or_build('model', key_for(dynamic, 8), build(8))
    assert (built, rebuilt, other_built, builds) == (True, False, True, [4, 8])
    assert again.engine_path == first.engine_path != other.engine_path
    assert again.info['key']['batch_profile'] == [1, 4, 4] and again.info['max_batch'] == 4


def test_the_same_key_gives_the_same_digest_in_another_process():
    code = ('from seg_perception.core.backends.engine_cache import EngineKey; '
            f'print(EngineKey(**{KEY.fields()!r}).digest())')
    other = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           check=True, env={**os.environ, 'PYTHONHASHSEED': '123'}).stdout
    assert other.strip() == KEY.digest()


def test_store_then_lookup_round_trips_the_sidecar(tmp_path):
    cache = EngineCache(str(tmp_path))
    stored = cache.store('model', KEY, b'\x00engine', {'precision_built': 'fp16'})
    found = cache.lookup('model', KEY)
    assert found is not None and found.engine_path == stored.engine_path
    info = json.loads(open(found.sidecar_path).read())
    assert info['key'] == KEY.fields() and info['precision_built'] == 'fp16'
    assert info['engine_bytes'] == 7
    assert cache.lookup('model', dataclasses.replace(KEY, precision='int8')) is None
    assert [n for n in os.listdir(tmp_path) if n.startswith('.')] == []  # no partial files


@pytest.mark.parametrize('damage', ['truncate', 'replace', 'sidecar', 'missing'])
def test_a_broken_entry_is_detected_removed_and_rebuilt(tmp_path, damage, caplog):
    cache = EngineCache(str(tmp_path))
    entry = cache.store('model', KEY, b'good engine', {})
    if damage == 'truncate':
        open(entry.engine_path, 'wb').write(b'good')
    elif damage == 'replace':
        open(entry.engine_path, 'wb').write(b'evil engine')  # same size, other bytes
    elif damage == 'sidecar':
        open(entry.sidecar_path, 'w').write('{not json')
    else:
        os.unlink(entry.engine_path)
    with caplog.at_level(logging.WARNING, logger='seg_perception'):
        assert cache.lookup('model', KEY) is None
    assert 'removed and rebuilt' in caplog.text and entry.engine_path in caplog.text
    rebuilt, built = cache.get_or_build('model', KEY, lambda: (b'new engine', {}))
    assert built and open(rebuilt.engine_path, 'rb').read() == b'new engine'


def test_two_processes_starting_on_one_cache_build_once(tmp_path):
    folder, builds = tmp_path / 'cache', tmp_path / 'builds'
    builds.mkdir()
    racers = [subprocess.Popen([sys.executable, '-c', RACE_SCRIPT, str(folder), str(builds)],
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [racer.communicate(timeout=120)[0].split(' ', 1) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    assert len(os.listdir(builds)) == 1  # one built, the other waited and found the entry
    assert sorted(built for built, _ in outputs) == ['False', 'True']
    assert outputs[0][1] == outputs[1][1]  # both use the same engine


def test_an_unwritable_cache_folder_is_one_clear_error(tmp_path):
    from seg_perception.core.errors import BackendError
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    with pytest.raises(BackendError, match='not writable.*engine_cache_dir'):
        EngineCache(str(blocker / 'engines')).get_or_build('model', KEY, lambda: (b'x', {}))


def test_auto_on_an_onnx_without_tensorrt_uses_onnxruntime_and_says_why(labels_model, caplog):
    from seg_perception.core.backends import create_backend, tensorrt_unavailable
    reason = tensorrt_unavailable()
    if not reason:
        pytest.skip('TensorRT and a GPU are present: auto picks TensorRT here')
    with caplog.at_level(logging.INFO, logger='seg_perception'):
        with create_backend('auto', labels_model) as backend:
            assert backend.name == 'onnxruntime'
    assert f'TensorRT: {reason}' in caplog.text


def test_explicit_tensorrt_without_it_refuses_with_what_to_install(labels_model):
    from seg_perception.core.backends import create_backend, tensorrt_unavailable
    from seg_perception.core.errors import BackendError
    if not tensorrt_unavailable():
        pytest.skip('TensorRT and a GPU are present')
    with pytest.raises(BackendError, match='tensorrt'):
        create_backend('tensorrt', labels_model)


BUNDLED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models')


@pytest.mark.gpu
@pytest.mark.parametrize('precision,model', [('fp16', 'camvid_lraspp.onnx'),
                                             ('int8', 'camvid_lraspp_int8.onnx')])
def test_tensorrt_builds_the_bundled_onnx_once_and_matches_onnxruntime(precision, model,
                                                                       camvid_samples,
                                                                       tmp_path):
    from seg_perception.core import Segmenter
    from seg_perception.core.backends import tensorrt_unavailable
    reason = tensorrt_unavailable()
    if reason:
        pytest.skip(f'needs TensorRT and an NVIDIA GPU ({reason})')
    if precision == 'fp16':
        import tensorrt
        if int(tensorrt.__version__.split('.')[0]) >= 11:
            pytest.skip('TensorRT 11 has no FP16 flag: fp16 needs an fp16 ONNX')
    path = os.path.join(BUNDLED, model)
    with Segmenter(os.path.join(BUNDLED, 'camvid_lraspp.onnx'), backend='onnxruntime') as ref:
        expected = [ref.process(rgb).labels for _, rgb, _ in camvid_samples]
    options = dict(backend='tensorrt', precision=precision, engine_cache_dir=str(tmp_path))
    with Segmenter(path, **options) as first:
        assert first.backend.build_info['built_now'] is True
        agreement = [(first.process(rgb).labels == want).mean()
                     for (_, rgb, _), want in zip(camvid_samples, expected)]
    assert min(agreement) >= 0.99, agreement
    with Segmenter(path, **options) as second:  # a second start finds the engine
        assert second.backend.build_info['built_now'] is False


@pytest.mark.gpu
def test_tensorrt_builds_a_dynamic_onnx_for_max_batch_and_caches_per_max_batch(tmp_path):
    from seg_perception.core.backends import create_backend, tensorrt_unavailable
    reason = tensorrt_unavailable()
    if reason:
        pytest.skip(f'needs TensorRT and an NVIDIA GPU ({reason})')
    import numpy as np

    from conftest import export_test_model
    model = export_test_model(tmp_path / 'dynamic.onnx', dynamic=True)
    options = dict(engine_cache_dir=str(tmp_path / 'engines'))
    with create_backend('tensorrt', model, max_batch=4, **options) as first:
        assert first.max_batch == 4 and first.build_info['built_now'] is True
        assert first.build_info['key']['batch_profile'] == [1, 4, 4]
        assert first.infer(np.zeros((4, 3, 96, 128), np.uint8)).shape == (4, 96, 128)
        assert first.infer(np.zeros((1, 3, 96, 128), np.uint8)).shape == (1, 96, 128)
    with create_backend('tensorrt', model, max_batch=4, **options) as again:
        assert again.max_batch == 4 and again.build_info['built_now'] is False
    with create_backend('tensorrt', model, max_batch=2, **options) as other:
        assert other.max_batch == 2 and other.build_info['built_now'] is True
