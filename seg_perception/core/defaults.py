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
Where the bundled default model lives: ``models/camvid_*.onnx``.

Looked up in the source checkout (``models/`` next to the package), in the ament share directory
of an installed package (``share/seg_perception/models``, via ament_index_python when importable)
and in ``<sys.prefix>/share/seg_perception/models`` (pip install).
"""

import glob
import os
import sys
from typing import List

from seg_perception.core.errors import ModelLoadError

PACKAGE = 'seg_perception'
DEFAULT_MODEL_PATTERN = 'camvid_*.onnx'
SOURCE_MODELS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'models')


def model_search_dirs() -> List[str]:
    """Return the folders searched for the bundled model, in order."""
    folders = [SOURCE_MODELS_DIR]
    try:
        from ament_index_python.packages import get_package_share_directory
        folders.append(os.path.join(get_package_share_directory(PACKAGE), 'models'))
    except Exception:  # noqa: BLE001 - ament index absent or package not installed with colcon
        pass
    folders.append(os.path.join(sys.prefix, 'share', PACKAGE, 'models'))
    unique: List[str] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def default_model_path() -> str:
    """
    Return the bundled default model, the first ``camvid_*.onnx`` (sorted) of the first folder.

    Raises ModelLoadError naming the folders searched when there is none.
    """
    folders = model_search_dirs()
    for folder in folders:
        found = sorted(glob.glob(os.path.join(folder, DEFAULT_MODEL_PATTERN)))
        if found:
            return found[0]
    raise ModelLoadError(f'no bundled model; pass model_path (looked for '
                         f'{DEFAULT_MODEL_PATTERN} in {", ".join(folders)})')
