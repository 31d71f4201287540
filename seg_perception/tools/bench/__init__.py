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
``seg-perception bench core|models|node``: post-processing, model backends, the node over DDS.

Each benchmark is a subcommand with its own ``--help`` and options (:mod:`.core`, :mod:`.models`,
:mod:`.node`; each module defines ``add_arguments(parser)`` and ``run(args)``), plus the shared
``--repeats``, ``--warmup`` and ``--json``. The flat spelling of earlier releases (``bench --core
--core-camera WxH``, ``bench --model A --bench-threads N``, ``bench --node --node-size WxH``)
still runs, for one release, after one deprecation line on stderr: its flags are declared here,
hidden, by replaying each module's ``add_arguments`` under the old names, so argparse checks
them exactly as before.
"""

import argparse
import importlib
import os
import sys
from typing import Any, Dict, List, Optional

from seg_perception.core.errors import DataError, UsageError
from seg_perception.tools.argtypes import non_negative_int, positive_int


# subcommand -> help; the implementing module is seg_perception.tools.bench.<subcommand>
MODES = {
    'core': 'postprocess + drivable + colorize at camera size (no model)',
    'models': 'torch eager vs ONNX Runtime fp32 vs INT8 for zoo architectures or .onnx files',
    'node': 'camera stamp -> ~/labels latency through the node over DDS',
}
# deprecated flat spelling: mode flag -> (subcommand, prefix its options had)
LEGACY_MODES = {'--core': ('core', '--core-'), '--model': ('models', '--bench-'),
                '--node': ('node', '--node-')}
LEGACY_UNPREFIXED = ('--no-transport-floor',)  # options that had no prefix
LEGACY_DEST = 'legacy__'  # dest prefix of the hidden old flags: legacy__<mode>__<dest>


def mode_module(mode: str) -> Any:
    """Import the module of a subcommand (by name, so ``--help`` imports nothing heavy)."""
    return importlib.import_module(f'{__name__}.{mode}')


def add_shared_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options every benchmark takes."""
    parser.add_argument('--repeats', type=positive_int, default=50,
                        help='timed runs (median reported; default %(default)s)')
    parser.add_argument('--warmup', type=non_negative_int, default=5,
                        help='untimed runs first (default %(default)s)')
    parser.add_argument('--json', metavar='FILE', help='also write the results as JSON')


class LegacyOptions:
    """
    Stand-in for a parser: declares a mode's options under their old names, hidden.

    ``add_argument('--size', ...)`` becomes ``--node-size`` (say) with dest
    ``legacy__node__size`` and no default, so only the options given show up in the namespace.
    Positionals are skipped: the old mode flag (``--model A [A ...]``) carried them.
    """

    def __init__(self, parser: argparse.ArgumentParser, scope: str, prefix: str) -> None:
        """Remember where to declare and how to rename."""
        self.parser, self.scope, self.prefix = parser, scope, prefix

    def add_argument(self, *flags: str, **options: Any) -> Optional[argparse.Action]:
        """Declare one option under its old name, hidden and without a default."""
        if not flags[0].startswith('-'):
            return None
        dest = options.pop('dest', None) or flags[0].lstrip('-').replace('-', '_')
        old = [old_flag(flag, self.prefix) for flag in flags if flag.startswith('--')]
        options.update(dest=f'{LEGACY_DEST}{self.scope}__{dest}', default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
        return self.parser.add_argument(*old, **options)


def old_flag(flag: str, prefix: str) -> str:
    """Return the flat spelling of a subcommand option (``--size`` -> ``--node-size``)."""
    return flag if flag in LEGACY_UNPREFIXED else prefix + flag[2:]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the subcommands, and the deprecated flat flags (hidden)."""
    sub = parser.add_subparsers(dest='bench', metavar='BENCHMARK', title='benchmarks')
    for mode, help_text in MODES.items():
        child = sub.add_parser(mode, help=help_text, description=help_text)
        mode_module(mode).add_arguments(child)
        add_shared_arguments(child)
    parser.epilog = ('"seg-perception bench BENCHMARK --help" lists its options. The flags '
                     '--core, --model and --node of earlier releases are deprecated.')
    for flag, (mode, _) in LEGACY_MODES.items():
        extra: Dict[str, Any] = ({'nargs': '+', 'metavar': 'M'} if mode == 'models'
                                 else {'action': 'store_true'})
        parser.add_argument(flag, dest=LEGACY_DEST + mode, default=argparse.SUPPRESS,
                            help=argparse.SUPPRESS, **extra)
    add_shared_arguments(LegacyOptions(parser, 'shared', '--'))  # type: ignore[arg-type]
    for mode, prefix in LEGACY_MODES.values():
        mode_module(mode).add_arguments(LegacyOptions(parser, mode, prefix))


def legacy_values(args: argparse.Namespace, scope: str) -> Dict[str, Any]:
    """Return {dest: value} of the old flags given for a scope (a mode or 'shared')."""
    head = f'{LEGACY_DEST}{scope}__'
    return {key[len(head):]: value for key, value in vars(args).items() if key.startswith(head)}


def legacy_flags(args: argparse.Namespace, scopes: List[str]) -> List[str]:
    """Return the old spellings of the flags given for some scopes (for an error message)."""
    prefixes = {'shared': '--', **{mode: prefix for mode, prefix in LEGACY_MODES.values()}}
    names = [flag for flag, (mode, _) in LEGACY_MODES.items()
             if mode in scopes and hasattr(args, LEGACY_DEST + mode)]
    for scope in scopes:
        names += [old_flag('--' + dest.replace('_', '-'), prefixes[scope])
                  for dest in legacy_values(args, scope)]
    return names


def from_legacy(args: argparse.Namespace) -> argparse.Namespace:
    """Return the subcommand namespace of a deprecated flat command line, after one warning."""
    if args.bench is not None:
        misplaced = legacy_flags(args, ['shared', *MODES])
        if misplaced:
            raise UsageError(f'{" ".join(misplaced)}: give options after the benchmark name '
                             f'(seg-perception bench {args.bench} --help)')
        return args
    given = [mode for mode in MODES if hasattr(args, LEGACY_DEST + mode)]
    if not given:
        raise UsageError(f'choose a benchmark: {" | ".join(MODES)} '
                         '(seg-perception bench --help)')
    if len(given) > 1:
        raise UsageError(f'{" ".join(legacy_flags(args, given))}: choose one benchmark')
    mode = given[0]
    others = legacy_flags(args, [other for other in MODES if other != mode])
    if others:
        raise UsageError(f'{" ".join(others)}: not an option of bench {mode}')
    parser = argparse.ArgumentParser(prog=f'seg-perception bench {mode}')
    mode_module(mode).add_arguments(parser)
    add_shared_arguments(parser)
    namespace = parser.parse_args(['placeholder'] if mode == 'models' else [])  # the defaults
    values = {**legacy_values(args, 'shared'), **legacy_values(args, mode)}
    if mode == 'models':
        values['models'] = getattr(args, LEGACY_DEST + mode)
    for key, value in values.items():
        setattr(namespace, key, value)
    namespace.command, namespace.bench = args.command, mode
    flag, prefix = next((f, p) for f, (m, p) in LEGACY_MODES.items() if m == mode)
    print(f'seg-perception bench: warning: "bench {flag}" and its {prefix}* options are '
          f'deprecated and go in the next release; use "seg-perception bench {mode}" with '
          f'the options unprefixed (seg-perception bench {mode} --help)', file=sys.stderr)
    return namespace


def run(args: argparse.Namespace) -> int:
    """Run the selected benchmark."""
    args = from_legacy(args)
    if args.json:  # fail now, not after minutes of benchmarking
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise DataError(f'--json {args.json}: folder {folder} does not exist')
    return int(mode_module(args.bench).run(args) or 0)
