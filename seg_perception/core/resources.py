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
The one place that knows where the package's shipped files are: config, models, sample frames.

Every lookup searches the same folders in the same order: the source checkout (the repository
next to the package), the ament share directory of a colcon install (via ament_index_python when
importable) and ``<sys.prefix>/share/seg_perception`` (pip install of the wheel). The first
folder that has the file wins.
"""

import glob
import os
import sys
from typing import List, Optional

from seg_perception.core.errors import ConfigError, ModelLoadError, SpecError


PACKAGE = 'seg_perception'
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODEL_PATTERN = 'camvid_*.onnx'
# share-relative folders
CONFIG_DIR = 'config'
CLASSES_DIR = os.path.join(CONFIG_DIR, 'classes')
CLASS_MAPS_DIR = os.path.join(CONFIG_DIR, 'class_maps')
MODELS_DIR = 'models'
SAMPLES_DIR = os.path.join('data', 'samples', 'camvid')


def share_roots() -> List[str]:
    """Return the folders that may hold the shipped files, in search order."""
    roots = [SOURCE_ROOT]
    try:
        from ament_index_python.packages import get_package_share_directory
        roots.append(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: BLE001 - ament index absent or package not installed with colcon
        pass
    roots.append(os.path.join(sys.prefix, 'share', PACKAGE))
    unique: List[str] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def search_dirs(relative: str) -> List[str]:
    """Return ``relative`` under every share root, in search order."""
    return [os.path.join(root, relative) for root in share_roots()]


def find_shipped(relative: str) -> Optional[str]:
    """Return the first existing ``<root>/<relative>``, or None."""
    for candidate in search_dirs(relative):
        if os.path.exists(candidate):
            return candidate
    return None


def shipped_names(folder: str, suffix: str = '.yaml') -> List[str]:
    """Return the names (without suffix) of the files of a shipped folder, over every root."""
    names = set()
    for candidate in search_dirs(folder):
        if os.path.isdir(candidate):
            names.update(f[:-len(suffix)] for f in os.listdir(candidate) if f.endswith(suffix))
    return sorted(names)


def bundled_yaml(folder: str, name_or_path: str, what: str) -> str:
    """
    Return a YAML file given its path or a bundled name (``camvid``) of a shipped folder.

    Raises SpecError naming the bundled choices when neither exists.
    """
    if os.path.isfile(name_or_path):
        return name_or_path
    found = find_shipped(os.path.join(folder, f'{name_or_path}.yaml'))
    if found is not None and os.path.isfile(found):
        return found
    raise SpecError(f'{name_or_path}: {what} not found (give a YAML path or one of '
                    f'{shipped_names(folder)})')


def config_file(name: str) -> str:
    """Return the path of a shipped file of config/, or raise naming where it looked."""
    found = find_shipped(os.path.join(CONFIG_DIR, name))
    if found is None:
        raise ConfigError(f'{name}: not found in {", ".join(search_dirs(CONFIG_DIR))}')
    return found


def model_search_dirs() -> List[str]:
    """Return the folders searched for the bundled model, in order."""
    return search_dirs(MODELS_DIR)


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


def sample_dir(kind: str = 'images') -> Optional[str]:
    """Return the shipped CamVid sample folder (``images`` or ``labels``), or None."""
    return find_shipped(os.path.join(SAMPLES_DIR, kind))
