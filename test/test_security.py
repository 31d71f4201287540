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
Files that run code when loaded: nothing of ours loads one unless told the file is trusted.

The payloads are real: a ``.pt2`` archive whose weight entry is a pickle that creates a marker
folder when unpickled (``torch.export.load`` unpickles such entries), and a training checkpoint
that does the same through ``torch.load``. The marker tells whether the code ran.
"""

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import pytest

from seg_perception.core.errors import ModelLoadError

torch = pytest.importorskip('torch', reason='torch is not installed (the [export] extra)')

CLI = [sys.executable, '-m', 'seg_perception.tools.cli']


class Payload:
    """Unpickling this calls os.mkdir(marker): code from the file runs."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def malicious_pt2(path, marker) -> str:
    """Save a real torch.export program, then make its bias a pickled payload; return path."""
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.linear(x)

    clean = str(path) + '.clean'
    torch.export.save(torch.export.export(Tiny(), (torch.zeros(1, 2),)), clean)
    with zipfile.ZipFile(clean) as source, zipfile.ZipFile(str(path), 'w') as target:
        config_name = next(n for n in source.namelist()
                           if n.endswith('model_weights_config.json'))
        config = json.loads(source.read(config_name))
        entry = config['config']['linear.bias']
        entry['use_pickle'] = True
        payload_name = os.path.join(os.path.dirname(config_name), entry['path_name'])
        for name in source.namelist():
            data = source.read(name)
            if name == config_name:
                data = json.dumps(config).encode()
            elif name == payload_name:
                data = pickle.dumps(Payload(str(marker)))
            target.writestr(name, data)
    os.remove(clean)
    return str(path)


def test_the_pt2_payload_is_real(tmp_path):
    """Loading the crafted archive with torch itself runs the payload (the test's premise)."""
    marker = tmp_path / 'ran'
    path = malicious_pt2(tmp_path / 'evil.pt2', marker)
    try:
        torch.export.load(path)
    except Exception:  # noqa: BLE001 - the program is broken after the payload ran
        pass
    assert marker.exists()


def test_core_refuses_code_carrying_torch_files_unless_trusted(tmp_path):
    from seg_perception.core import Segmenter
    marker = tmp_path / 'ran'
    path = malicious_pt2(tmp_path / 'evil.pt2', marker)
    with pytest.raises(ModelLoadError, match=r'evil.pt2: not loaded: a torch.export program'):
        Segmenter(path, backend='torch')
    assert not marker.exists()


def test_infer_refuses_an_untrusted_pt2(tmp_path):
    from conftest import SAMPLES
    marker = tmp_path / 'ran'
    path = malicious_pt2(tmp_path / 'evil.pt2', marker)
    result = subprocess.run(CLI + ['infer', '--model', path, '--images', f'{SAMPLES}/images',
                                   '--out', str(tmp_path / 'out')],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert '--trust-model-code' in result.stderr and 'Traceback' not in result.stderr
    assert not marker.exists()


def test_train_resume_never_unpickles_code(tmp_path):
    from test_train import make_dataset
    make_dataset(tmp_path / 'data', count=2)
    marker = tmp_path / 'ran'
    checkpoint = tmp_path / 'resume.pt'
    torch.save({'model': {}, 'epoch': Payload(str(marker))}, str(checkpoint))
    result = subprocess.run(CLI + ['train', '--data', str(tmp_path / 'data'), '--out',
                                   str(tmp_path / 'run'), '--epochs', '1', '--batch-size', '2',
                                   '--resume', str(checkpoint)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr
    assert f'{checkpoint}: not a checkpoint' in result.stderr
    assert not marker.exists()


def test_torchscript_loads_only_when_trusted(tmp_path):
    from seg_perception.core.backends import create_backend
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    path = tmp_path / 'scripted.pt'
    torch.jit.save(scripted, str(path))
    with pytest.raises(ModelLoadError, match='TorchScript archive carries code'):
        create_backend('torch', str(path))
    with create_backend('torch', str(path), trust_code=True) as backend:
        assert backend.name == 'torch'
    buffer = io.BytesIO()
    torch.save({'weight': torch.zeros(2)}, buffer)  # a state dict is no TorchScript
    (tmp_path / 'state.pt').write_bytes(buffer.getvalue())
    from seg_perception.core.backends.torch_backend import is_torchscript
    assert is_torchscript(str(path)) and not is_torchscript(str(tmp_path / 'state.pt'))


@pytest.mark.ros
def test_a_dds_peer_cannot_make_the_node_load_a_torch_file(labels_model, camvid_samples,
                                                           tmp_path):
    """model_path set by another participant to a .pt2: refused unopened, the node serves on."""
    from seg_perception.ros.harness.peer import NodeProcess, Peer
    marker = tmp_path / 'ran'
    evil = malicious_pt2(tmp_path / 'evil.pt2', marker)
    node = NodeProcess({'model_path': labels_model, 'num_threads': 1},
                       name='segmentation_security', log_dir=str(tmp_path))
    peer = Peer(node.fqn)
    try:
        probe = peer.make_message(camvid_samples[0][1], 'rgb8', frame_id='probe')
        assert peer.wait_ready(probe, 90.0), node.log()
        refused = peer.set_parameters({'model_path': evil}, timeout=60.0)[0]
        assert not refused.successful
        assert 'allow_torch_models' in refused.reason and 'evil.pt2' in refused.reason
        assert peer.get_parameters(['model_path'])['model_path'] == labels_model
        after = peer.make_message(camvid_samples[1][1], 'rgb8', frame_id='after')
        assert peer.wait_ready(after, 30.0), node.log()  # still serving the old model
    finally:
        peer.close()
        code = node.stop()
    assert code == 0, node.log()
    assert not marker.exists()
