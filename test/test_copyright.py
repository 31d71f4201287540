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

"""Lint tier: every Python file starts with the project's Apache-2.0 copyright header."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ('seg_perception', 'test', 'launch', 'setup.py', 'benchmarks')
SKIP_DIRS = {'.venv', 'build', 'install', 'log', 'out', '__pycache__', '.git'}
COPYRIGHT = re.compile(r'^# Copyright (\d{4})(-\d{4})? \S.*$')
LICENSE_LINES = [
    '#',
    '# Licensed under the Apache License, Version 2.0 (the "License");',
    '# you may not use this file except in compliance with the License.',
    '# You may obtain a copy of the License at',
    '#',
    '#     http://www.apache.org/licenses/LICENSE-2.0',
    '#',
    '# Unless required by applicable law or agreed to in writing, software',
    '# distributed under the License is distributed on an "AS IS" BASIS,',
    '# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.',
    '# See the License for the specific language governing permissions and',
    '# limitations under the License.',
]


def python_files():
    """Yield the repository's Python files under the lint targets."""
    for target in TARGETS:
        path = os.path.join(REPO, target)
        if os.path.isfile(path):
            yield path
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = [d for d in subfolders if d not in SKIP_DIRS]
            for name in sorted(files):
                if name.endswith('.py'):
                    yield os.path.join(folder, name)


def header_problem(path):
    """Return what is wrong with a file's header, or None."""
    with open(path, encoding='utf-8') as stream:
        lines = stream.read().splitlines()
    if lines and lines[0].startswith('#!'):
        lines = lines[1:]
    if not lines or not COPYRIGHT.match(lines[0]):
        return 'first line is not "# Copyright <year> <holder>"'
    for number, expected in enumerate(LICENSE_LINES, start=2):
        if number - 1 >= len(lines) or lines[number - 1] != expected:
            return f'line {number} should be {expected!r}'
    return None


def test_copyright():
    problems = [f'{os.path.relpath(path, REPO)}: {problem}' for path in python_files()
                for problem in [header_problem(path)] if problem]
    assert not problems, 'missing or wrong Apache-2.0 header:\n' + '\n'.join(problems)


def test_copyright_catches_a_bad_header(tmp_path):
    good = tmp_path / 'good.py'
    with open(os.path.join(REPO, 'seg_perception', 'core', 'spec.py'), encoding='utf-8') as spec:
        good.write_text(''.join(spec.readlines()[:13]) + '\n"""Module."""\n')
    assert header_problem(str(good)) is None
    bad = tmp_path / 'bad.py'
    bad.write_text(good.read_text().replace('Version 2.0', 'Version 3.0'))
    assert 'line 3' in header_problem(str(bad))
    bare = tmp_path / 'bare.py'
    bare.write_text('"""No header."""\n')
    assert 'Copyright' in header_problem(str(bare))
