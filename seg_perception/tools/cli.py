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
The ``seg-perception`` command line: one module per subcommand, imported lazily.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int`` and imports its
heavy dependencies (torch, rclpy, matplotlib) inside ``run`` so ``--help`` stays fast. Exit codes:
0 success, 1 failure (one line naming the file/topic at fault), 2 bad usage.
"""

import argparse
import importlib
import sys
from typing import Any, List, Optional

from seg_perception.core.errors import one_line, SegPerceptionError, UsageError


FAILURE_EXIT, USAGE_EXIT = 1, 2  # 2 is what argparse exits with on bad usage

COMMANDS = {
    'export': 'export a model of the zoo to self-describing ONNX (fp32 or INT8 QDQ)',
    'build-engine': 'build a TensorRT engine from an exported ONNX model',
    'infer': 'run a model over a bag or an image folder and write labels/masks/overlays',
    'evaluate': 'score a model (or recorded predictions) against ground truth; write a report',
    'make-bag': 'build an evaluation bag from image (and label) folders',
    'replay': "publish a bag's image topics with rclpy at original timing",
    'bench': 'benchmark the core, the backends and the node',
    'demo': 'segment bundled CamVid frames and write overlays',
    'train': 'train a zoo model on CamVid-style data',
}


def module_name(command: str) -> str:
    """Return the module implementing a subcommand."""
    return 'seg_perception.tools.' + command.replace('-', '_')


GIVEN_PREFIX = '_given_'


class GivenOnce(argparse.Action):
    """
    Mixin of the single-value actions: an option given twice is bad usage, not "last one wins".

    ``evaluate --bag A --bag B`` used to score only B and report it as the whole set; options
    that take several values say so (nargs or action='append').
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        marker = GIVEN_PREFIX + self.dest
        earlier = getattr(namespace, marker, None)
        if earlier is not None:
            given = f'{option_string} given twice' if earlier == option_string else \
                f'{earlier} and {option_string} given together'
            parser.error(f'{given}: only one value would be used; give it once')
        setattr(namespace, marker, option_string)
        super().__call__(parser, namespace, values, option_string)


class StoreOnce(GivenOnce, argparse._StoreAction):
    """``store``, given at most once."""


class StoreConstOnce(GivenOnce, argparse._StoreConstAction):
    """``store_const``, given at most once."""


class StoreTrueOnce(GivenOnce, argparse._StoreTrueAction):
    """``store_true``, given at most once."""


class StoreFalseOnce(GivenOnce, argparse._StoreFalseAction):
    """``store_false``, given at most once."""


class StrictParser(argparse.ArgumentParser):
    """An ArgumentParser (and subparsers) whose single-value options refuse repetition."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, action in ((None, StoreOnce), ('store', StoreOnce),
                             ('store_const', StoreConstOnce), ('store_true', StoreTrueOnce),
                             ('store_false', StoreFalseOnce)):
            self.register('action', name, action)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """Parse, then drop the bookkeeping of which options were given."""
        parsed, extras = super().parse_known_args(args, namespace)
        for key in [k for k in vars(parsed) if k.startswith(GIVEN_PREFIX)]:
            delattr(parsed, key)
        return parsed, extras


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """Build the parser; only the named subcommand's module is imported."""
    parser = StrictParser(
        prog='seg-perception', description='Semantic segmentation tools for driving.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name, help_text in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name(name)).add_arguments(child)
    return parser


def describe_os_error(error: OSError) -> str:
    """Return 'file: reason' for an OSError (both files of a rename)."""
    if error.filename is None:
        return str(error)
    files = error.filename if error.filename2 is None else (
        f'{error.filename} -> {error.filename2}')
    return f'{files}: {error.strerror or error}'


def main(argv: Optional[List[str]] = None) -> int:
    """Parse arguments, run the subcommand and map typed errors to exit code 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith('-')), None)
    if command not in COMMANDS:
        command = None
    args = build_parser(command).parse_args(argv)
    try:
        return int(importlib.import_module(module_name(args.command)).run(args) or 0)
    except UsageError as error:
        print(f'seg-perception {args.command}: error: {one_line(error)}', file=sys.stderr)
        return USAGE_EXIT
    except SegPerceptionError as error:
        print(f'seg-perception {args.command}: error: {one_line(error)}', file=sys.stderr)
        return FAILURE_EXIT
    except OSError as error:  # an output that cannot be written, a disk that is full, ...
        print(f'seg-perception {args.command}: error: {describe_os_error(error)}',
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'seg-perception {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
