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
Fleet evaluation speed: in process vs Ray with 1 and 2 local workers, and a scaling model.

Writes ``--bags`` evaluation bags of ``--frames`` CamVid sample frames each (480x360, made with
``seg-perception make-bag``), then runs ``seg-perception evaluate`` over all of them:

1. in process (one bag after another; ``--threads 1 --workers 0``: one inference thread and no
   decode threads, as each 1-CPU Ray worker runs),
2. ``--ray --ray-workers 1`` and 3. ``--ray --ray-workers 2`` (a local Ray instance, one
   inference thread per worker),

``--repeats`` times each, and checks that every run gives the same confusion matrix. From each
run's ``metrics.json``: frames/s over the scoring phase (first unit handed out to last result
merged; the Ray start and model loading are reported apart as startup), the per-unit wall time
inside the worker, and the merge time. Derived:

- per-unit overhead of the Ray path, two ways: end to end = (Ray 1-worker scoring time -
  in-process scoring time) / bags (includes any change of model speed between the runs: noisy
  on a loaded machine), and dispatch = (scoring time - the time the worker spent inside its
  units) / bags (what Ray itself costs a unit: hand-out, result transfer, merge), each also as
  a percentage of the in-process time per bag (medians over the repeats);
- the scaling model ``T(N) = ceil(bags / N) * (t_unit + dispatch) + merge`` (scoring phase,
  startup apart) with ``t_unit`` and ``dispatch`` measured with one worker; it predicts
  frames/s for N workers (an upper bound: it assumes N free cores and equal bags);
- the 2-worker speedup over 1 worker.

``python benchmarks/fleet_bench.py [--bags 8] [--frames 12] [--model M.onnx] [--json out.json]``
(needs the ``fleet`` extra). The machine load (``os.getloadavg``) is printed with the numbers:
on a shared machine the speedup is bounded by the cores other jobs leave free.
"""

import argparse
import contextlib
import glob
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from seg_perception.tools.cli import main  # noqa: E402

SAMPLES = os.path.join(REPO, 'data', 'samples', 'camvid')


def cli(*argv: Any) -> int:
    """Run ``seg-perception argv`` here with its output swallowed; return the exit code."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main([str(a) for a in argv])


def make_bags(root: str, count: int, frames: int) -> List[str]:
    """Write ``count`` bags of ``frames`` sample frames (repeated as needed); return them."""
    images = sorted(glob.glob(os.path.join(SAMPLES, 'images', '*.png')))
    bags = []
    for index in range(count):
        folder = os.path.join(root, f'frames_{index}')
        for sub in ('images', 'labels'):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        for k in range(frames):
            source = images[(index + k) % len(images)]
            name = f'{k:04d}.png'
            shutil.copy(source, os.path.join(folder, 'images', name))
            shutil.copy(os.path.join(SAMPLES, 'labels', os.path.basename(source)),
                        os.path.join(folder, 'labels', name))
        out = os.path.join(root, f'drive_{index:03d}.mcap')
        code = cli('make-bag', '--images', os.path.join(folder, 'images'), '--labels',
                   os.path.join(folder, 'labels'), '--out', out, '--start-stamp',
                   str(1700000000 + 100 * index))
        if code:
            raise SystemExit(f'make-bag failed for {out}')
        bags.append(out)
    return bags


def evaluate(bags: List[str], report: str, model: str, *options: str) -> Dict[str, Any]:
    """Run evaluate over the bags; return the facts this benchmark uses."""
    argv = ['evaluate', '--threads', '1', '--report', report, *options]
    if model:
        argv += ['--model', model]
    for bag in bags:
        argv += ['--bag', bag]
    started = time.perf_counter()
    code = cli(*argv)
    wall = time.perf_counter() - started
    if code:
        raise SystemExit(f'evaluate {" ".join(options)} exited {code}')
    with open(os.path.join(report, 'metrics.json'), encoding='utf-8') as stream:
        metrics = json.load(stream)
    info = metrics['fleet']
    frames = metrics['frames']['evaluated']
    unit_s = [row['wall_s'] for row in metrics['bags']]
    return {'frames': frames, 'bags': len(bags), 'command_s': wall,
            'startup_s': info['startup_s'], 'scoring_s': info['scoring_s'],
            'merge_s': info['merge_s'], 'frames_per_second': frames / info['scoring_s'],
            'unit_s_mean': statistics.mean(unit_s),
            'segmenter_ms': metrics['throughput']['segmenter_ms_per_frame'],
            'confusion': metrics['segmentation']['confusion']}


def median_run(series: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Return the run of median frames/s of a series."""
    ranked = sorted(series, key=lambda run: run['frames_per_second'])
    return ranked[(len(ranked) - 1) // 2]


def predict(one: Dict[str, Any], overhead_s: float, workers: int) -> float:
    """Return the frames/s the scaling model predicts for ``workers`` workers."""
    rounds = math.ceil(one['bags'] / workers)
    scoring = rounds * (one['unit_s_mean'] + overhead_s) + one['merge_s']
    return one['frames'] / scoring


def main_bench() -> None:
    """Run the benchmark and print (and optionally save) the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--bags', type=int, default=16)
    parser.add_argument('--frames', type=int, default=24, help='frames per bag')
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--model', default='', help='model (default: the bundled one)')
    parser.add_argument('--json', help='write the numbers to this file')
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix='fleet_bench_')
    try:
        bags = make_bags(root, args.bags, args.frames)
        # in process without decode threads: what a 1-CPU Ray worker runs (evaluate caps a
        # worker's decode threads to its --ray-cpus), so the overhead compares like with like
        configs = {'in-process': ('--workers', '0'), 'ray-1': ('--ray', '--ray-workers', '1'),
                   'ray-2': ('--ray', '--ray-workers', '2')}
        runs: Dict[str, List[Dict[str, Any]]] = {name: [] for name in configs}
        load = [os.getloadavg()[0]]
        for repeat in range(args.repeats):
            for name, options in configs.items():
                report = os.path.join(root, f'report_{name}_{repeat}')
                runs[name].append(evaluate(bags, report, args.model, *options))
                load.append(os.getloadavg()[0])
        reference = runs['in-process'][0]['confusion']
        identical = all(run['confusion'] == reference for series in runs.values()
                        for run in series)
        best = {name: median_run(series) for name, series in runs.items()}
        inproc, one, two = best['in-process'], best['ray-1'], best['ray-2']
        overhead_s = (one['scoring_s'] - inproc['scoring_s']) / one['bags']
        per_unit_inproc = inproc['scoring_s'] / inproc['bags']
        dispatch = {name: (run['scoring_s'] - run['bags'] * run['unit_s_mean']) / run['bags']
                    for name, run in best.items() if name != 'ray-2'}  # one unit at a time
        result = {
            'bags': args.bags, 'frames_per_bag': args.frames, 'repeats': args.repeats,
            'cpu_count': os.cpu_count(), 'load_average_1min': load,
            'identical_confusion': identical,
            'runs': {name: [{k: v for k, v in run.items() if k != 'confusion'} for run in series]
                     for name, series in runs.items()},
            'frames_per_second': {name: run['frames_per_second'] for name, run in best.items()},
            'speedup_2_over_1': two['frames_per_second'] / one['frames_per_second'],
            'ray_overhead_s_per_unit': overhead_s,
            'ray_overhead_percent_of_unit': 100.0 * overhead_s / per_unit_inproc,
            'dispatch_s_per_unit': dispatch,
            'dispatch_percent_of_unit': {name: 100.0 * value / per_unit_inproc
                                         for name, value in dispatch.items()},
            'merge_ms_per_unit': 1e3 * one['merge_s'] / one['bags'],
            'startup_s': {name: run['startup_s'] for name, run in best.items()},
            'predicted_frames_per_second': {n: predict(one, max(dispatch['ray-1'], 0.0), n)
                                            for n in (1, 2, 4, 8, 16)},
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(result, stream, indent=1)


if __name__ == '__main__':
    main_bench()
