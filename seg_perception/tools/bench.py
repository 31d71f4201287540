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

"""``seg-perception bench``: core post-processing, model backends, and the node over DDS."""

import argparse
import importlib
import os

from seg_perception.core.errors import DataError
from seg_perception.tools.argtypes import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the bench options; each mode's module adds its own."""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument('--core', action='store_true',
                      help='postprocess + drivable + colorize at camera size (no model)')
    mode.add_argument('--model', nargs='+', metavar='M',
                      help='arch names (e.g. lraspp pspnet) or .onnx files: torch eager vs '
                           'ONNX Runtime fp32 vs int8')
    mode.add_argument('--node', action='store_true',
                      help='camera stamp -> ~/labels latency through the node over DDS')
    parser.add_argument('--repeats', type=positive_int, default=50,
                        help='timed runs (median reported)')
    parser.add_argument('--warmup', type=non_negative_int, default=5, help='untimed runs first')
    parser.add_argument('--json', metavar='FILE', help='also write the results as JSON')
    for name in ('bench_core', 'bench_models', 'bench_node'):
        try:
            module = importlib.import_module(f'seg_perception.tools.{name}')
        except ImportError:
            continue
        module.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the selected benchmark."""
    name = 'bench_core' if args.core else 'bench_models' if args.model else 'bench_node'
    if args.json:  # fail now, not after minutes of benchmarking
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise DataError(f'--json {args.json}: folder {folder} does not exist')
    return importlib.import_module(f'seg_perception.tools.{name}').run(args)
