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
The package's rooms and the direction of imports between them (AST over every module).

Rooms, low to high: ``core`` (numpy/OpenCV only) < ``io`` (ROS-free data access) < ``models``
(torch) and ``ros`` (rclpy) < ``tools`` (the CLI). A module imports only from its own room or
rooms below; ``models`` and ``ros`` never import each other; the test/bench harness
(``ros.harness``) is used only by tools and tests; and no modules import each other in a circle.
Imports inside functions count as much as those at the top.
"""

import ast
import os
from pathlib import Path
import textwrap
from typing import Dict, List, Set

PACKAGE_DIR = Path(__file__).resolve().parent.parent / 'seg_perception'
RANKS = {'': 0, 'core': 0, 'io': 1, 'models': 2, 'ros': 2, 'tools': 3}
HARNESS = 'seg_perception.ros.harness'


def module_names(package_dir: Path) -> Dict[str, Path]:
    """Return {dotted module name: file} for every module of the package."""
    modules = {}
    for path in package_dir.rglob('*.py'):
        parts = list(path.relative_to(package_dir.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        modules['.'.join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """Return the package modules that ``name`` imports anywhere in its file."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t.split('.')[0] == package_dir_name(modules))
    return found


def package_dir_name(modules: Dict[str, Path]) -> str:
    return next(iter(modules)).split('.')[0]


def room(module: str) -> str:
    """Return the room of a dotted module name ('' for the package root)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def violations(package_dir: Path) -> List[str]:
    """Return one line per import against the layering and per import circle."""
    modules = module_names(package_dir)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    problems = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            source_room, target_room = room(name), room(target)
            if source_room == target_room:
                continue
            if RANKS.get(target_room, 99) >= RANKS.get(source_room, -1):
                problems.append(f'{name} imports {target}: {source_room or "root"} may not '
                                f'import {target_room}')
        for target in sorted(targets):
            harness = HARNESS.replace('seg_perception', package_dir.name)
            if target.startswith(harness) and not (name.startswith(harness)
                                                   or room(name) == 'tools'):
                problems.append(f'{name} imports the test/bench harness {target}')
    problems += [f'import circle: {" -> ".join(cycle)}' for cycle in circles(graph)]
    return problems


def circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Return one cycle per strongly connected group of modules (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group) + [sorted(group)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_imports_run_only_downward_and_never_in_circles():
    problems = violations(PACKAGE_DIR)
    assert not problems, 'layering violations:\n' + '\n'.join(problems)


def write_package(root: Path, files: Dict[str, str]) -> Path:
    """Write a small package named seg_perception under root; return its folder."""
    for relative, text in files.items():
        path = root / 'seg_perception' / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for folder in {p.parent for p in (root / 'seg_perception').rglob('*.py')}:
        (folder / '__init__.py').touch()
    return root / 'seg_perception'


def test_the_check_catches_upward_imports_harness_use_and_circles(tmp_path):
    package = write_package(tmp_path, {
        'core/spec.py': 'import os\n',
        'core/backends/torch_backend.py': """
            def load():
                from seg_perception.models.zoo import create_model  # upward, in a function
            """,
        'models/zoo.py': 'from seg_perception.core import spec\n',
        'models/calibration.py': 'from seg_perception.tools import bagio\n',
        'models/peer_user.py': 'from seg_perception.ros import node\n',
        'ros/node.py': 'from seg_perception.ros.harness.peer import Peer\n',
        'ros/harness/peer.py': 'import os\n',
        'io/a.py': 'from . import b\n',
        'io/b.py': 'from seg_perception.io import a\n',
        'tools/bagio.py': 'from seg_perception.io import a\n',
        'tools/bench.py': 'from seg_perception.ros.harness import peer\n',
    })
    problems = '\n'.join(violations(package))
    assert 'seg_perception.core.backends.torch_backend imports seg_perception.models.zoo' \
        in problems
    assert 'seg_perception.models.calibration imports seg_perception.tools.bagio' in problems
    assert 'seg_perception.models.peer_user imports seg_perception.ros.node' in problems
    assert 'seg_perception.ros.node imports the test/bench harness' in problems
    assert 'import circle: seg_perception.io.a -> seg_perception.io.b -> seg_perception.io.a' \
        in problems
    assert 'tools.bench imports the test/bench harness' not in problems
    assert len(problems.splitlines()) == 5, problems


def test_every_room_is_known():
    rooms = {room(name) for name in module_names(PACKAGE_DIR)}
    assert rooms <= set(RANKS), rooms - set(RANKS)
    assert os.path.isdir(PACKAGE_DIR / 'io')
