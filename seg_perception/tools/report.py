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
Evaluation reports: ``metrics.json``, ``report.md`` and a self-contained ``report.html``.

The HTML embeds its matplotlib figures as PNG data URIs (per-class IoU bars, the row-normalized
confusion matrix, a strip of the worst and best frames, the latency histogram), so the one file
can be attached to a ticket or a CI artifact. An incomplete run (a corrupt bag) says so at the
top of every file.

A report folder never looks current when it is not: :func:`invalidate` removes the old report
before a run starts, each file is written atomically (:mod:`seg_perception.core.atomic`)
with ``metrics.json`` last, and a run whose report cannot be written (a full disk) leaves at most a
``metrics.json`` saying ``"complete": false`` and why.
"""

import base64
from dataclasses import dataclass
import html
import io
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from seg_perception.core import atomic


METRICS_FILE = 'metrics.json'
MARKDOWN_FILE = 'report.md'
HTML_FILE = 'report.html'
REPORT_FILES = (METRICS_FILE, MARKDOWN_FILE, HTML_FILE)  # metrics.json first: it says "done"


@dataclass
class Thumbnail:
    """A small picture of one frame for the worst/best strip."""

    name: str
    score: float
    prediction: np.ndarray  # RGB overlay of the prediction on the image (or its colors)
    ground_truth: np.ndarray  # RGB colors of the ground truth
    bag: str = ''  # the bag of the frame (fleet runs)


def json_safe(value: Any) -> Any:
    """Return value with NaN/inf as None and numpy scalars/arrays as plain Python."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _number(value: Optional[float], digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    return f'{value:.{digits}f}'


# -- figures -------------------------------------------------------------------------------------
def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=100, bbox_inches='tight')
    import matplotlib.pyplot as plt
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode('ascii')


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def figure_iou(class_names: Sequence[str], iou: Sequence[Optional[float]],
               colors: Optional[np.ndarray] = None) -> str:
    """Return a base64 PNG of the per-class IoU bar chart (classes absent from the set: n/a)."""
    plt = _pyplot()
    values = [v if v is not None else 0.0 for v in iou]
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(class_names)), 3.6))
    bar_colors = [tuple(c / 255.0) for c in colors] if colors is not None else None
    bars = axes.bar(range(len(values)), values, color=bar_colors, edgecolor='black')
    for bar, value in zip(bars, iou):
        axes.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01,
                  'n/a' if value is None else f'{value:.2f}', ha='center', va='bottom',
                  fontsize=8)
    axes.set_xticks(range(len(values)))
    axes.set_xticklabels(class_names, rotation=45, ha='right')
    axes.set_ylim(0, 1.08)
    axes.set_ylabel('IoU')
    axes.set_title('Per-class IoU')
    return _png(figure)


def figure_confusion(confusion: np.ndarray, class_names: Sequence[str]) -> str:
    """Return a base64 PNG heat map of the confusion matrix, each GT row normalized to 1."""
    plt = _pyplot()
    matrix = np.asarray(confusion, np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(5.0, 0.5 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(normalized, cmap='viridis', vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(class_names)))
    axes.set_xticklabels(class_names, rotation=45, ha='right')
    axes.set_yticks(range(len(class_names)))
    axes.set_yticklabels(class_names)
    axes.set_xlabel('prediction')
    axes.set_ylabel('ground truth')
    axes.set_title('Confusion matrix (rows normalized)')
    if len(class_names) <= 20:
        for row in range(normalized.shape[0]):
            for col in range(normalized.shape[1]):
                if normalized[row, col] >= 0.01:
                    axes.text(col, row, f'{normalized[row, col]:.2f}', ha='center',
                              va='center', fontsize=6,
                              color='white' if normalized[row, col] < 0.6 else 'black')
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    return _png(figure)


def figure_strip(worst: Sequence[Thumbnail], best: Sequence[Thumbnail]) -> Optional[str]:
    """Return a base64 PNG: worst then best frames, prediction overlay beside ground truth."""
    rows = [('worst', t) for t in worst] + [('best', t) for t in best]
    if not rows:
        return None
    plt = _pyplot()
    height, width = rows[0][1].prediction.shape[:2]
    figure, axes = plt.subplots(len(rows), 2, squeeze=False,
                                figsize=(7.0, len(rows) * 3.5 * height / width + 0.4))
    for (group, thumb), (left, right) in zip(rows, axes):
        left.imshow(thumb.prediction)
        right.imshow(thumb.ground_truth)
        where = f'{os.path.basename(os.path.normpath(thumb.bag))} ' if thumb.bag else ''
        left.set_title(f'{group}: {where}{thumb.name}  mIoU {_number(thumb.score, 3)}',
                       fontsize=8)
        right.set_title('ground truth', fontsize=8)
        for axis in (left, right):
            axis.axis('off')
    return _png(figure)


def figure_latency(latencies: Dict[str, Sequence[float]]) -> Optional[str]:
    """Return a base64 PNG histogram of the per-frame latency of each stage (ms)."""
    series = {k: np.asarray(v, np.float64) for k, v in latencies.items() if len(v)}
    if not series:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.0, 3.6))
    high = max(float(np.percentile(v, 99.5)) for v in series.values())
    bins = np.linspace(0.0, max(high, 1e-3) * 1.05, 50)
    for name, values in series.items():
        axes.hist(np.clip(values, 0, bins[-1]), bins=bins, alpha=0.55, label=name)
    axes.set_xlabel('ms per frame')
    axes.set_ylabel('frames')
    axes.set_title('Latency per stage')
    axes.legend(fontsize=8)
    return _png(figure)


# -- text ----------------------------------------------------------------------------------------
def figure_operating_points(points: Optional[Dict[str, Any]]) -> Optional[str]:
    """Plot the drivable precision-recall curve over the confidence thresholds."""
    if not points or not points.get('points'):
        return None
    plt = _pyplot()
    rows = [p for p in points['points'] if p.get('precision') is not None]
    figure, axis = plt.subplots(figsize=(6, 4.5))
    axis.plot([p['recall'] for p in rows], [p['precision'] for p in rows], marker='o')
    for p in rows[::2]:
        axis.annotate(str(p['threshold']), (p['recall'], p['precision']), fontsize=7)
    chosen = points.get('recommended')
    if chosen:
        axis.plot([chosen['recall']], [chosen['precision']], marker='*', markersize=14,
                  label=f'threshold {chosen["threshold"]}')
        axis.legend()
    axis.set_xlabel('drivable recall')
    axis.set_ylabel('drivable precision')
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def _headline(metrics: Dict[str, Any]) -> List[str]:
    lines = []
    if not metrics.get('complete', True):
        lines.append(f'INCOMPLETE: {metrics.get("error")}; the numbers cover the frames read '
                     'before the failure only.')
    return lines


def _rows(metrics: Dict[str, Any]) -> Dict[str, List[List[str]]]:
    """Return the report tables as rows of strings (shared by Markdown and HTML)."""
    seg = metrics.get('segmentation', {})
    frames = metrics.get('frames', {})
    drivable = metrics.get('drivable') or {}
    summary = [['mIoU', _number(seg.get('miou'))],
               ['pixel accuracy', _number(seg.get('pixel_accuracy'))]]
    if drivable:
        summary += [['drivable IoU', _number(drivable.get('iou'))],
                    ['drivable precision', _number(drivable.get('precision'))],
                    ['drivable recall', _number(drivable.get('recall'))]]
    summary += [['frames evaluated', str(frames.get('evaluated', 0))],
                ['frames skipped', str(frames.get('skipped', 0))]]
    if frames.get('gt_without_image'):
        summary.append(['labels without an image', str(frames['gt_without_image'])])
    throughput = metrics.get('throughput') or {}
    if throughput.get('segmenter_ms_per_frame') is not None:
        summary.append(['segmenter ms/frame', _number(throughput['segmenter_ms_per_frame'], 2)])
        summary.append(['tool overhead ms/frame (% of segmenter)',
                        f'{_number(throughput.get("overhead_ms_per_frame"), 2)} '
                        f'({_number(throughput.get("overhead_percent"), 1)} %)'])
    classes = [[name, _number(value), str(seg.get('gt_pixels', {}).get(name, ''))]
               for name, value in seg.get('iou', {}).items()]
    skipped = [[reason, str(count)] for reason, count in frames.get('skip_reasons', {}).items()]
    latency = [[stage, _number(v.get('p50'), 2), _number(v.get('p95'), 2),
                _number(v.get('p99'), 2), _number(v.get('mean'), 2)]
               for stage, v in (metrics.get('latency_ms') or {}).items()]
    points = metrics.get('drivable_operating_points') or {}
    operating = [[str(p['threshold']), _number(p.get('precision')), _number(p.get('recall'))]
                 for p in points.get('points', [])]
    if points.get('recommended'):
        chosen = points['recommended']
        operating.append([f'{chosen["threshold"]} (reaches precision '
                          f'{points["requested_precision"]:g})', _number(chosen['precision']),
                          _number(chosen['recall'])])
    tables = {'summary': summary, **_comparison_rows(metrics), 'classes': classes}
    tables.update(_fleet_rows(metrics))
    tables.update({'operating': operating, 'skipped': skipped, 'latency': latency,
                   'run': _run_rows(metrics)})
    return tables


def _cell(text: Any, limit: int = 240) -> str:
    """Return text for a table cell: one line, at most ``limit`` characters, no '|'."""
    text = ' '.join(str(text if text is not None else '').split()).replace('|', '/')
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _scores(row: Dict[str, Any]) -> List[str]:
    frames = row.get('frames') or {}
    latency = row.get('latency_ms') or {}
    return [str(frames.get('evaluated', 0)), _number(row.get('miou')),
            _number(row.get('road_iou')), _number(row.get('drivable_precision')),
            _number(row.get('drivable_recall')), _number(latency.get('p50'), 2)]


def _fleet_rows(metrics: Dict[str, Any]) -> Dict[str, List[List[str]]]:
    """Return the per-bag, per-sequence and worst-frames tables of a run over bags."""
    bags = [[_cell(row['bag'], 120), row['status'], *_scores(row),
             str(row.get('attempts', 1)), _cell(_without_bag(row))]
            for row in metrics.get('bags') or []]
    sequences = [[_cell(row['sequence'], 120), str(row['bags']), *_scores(row)]
                 for row in metrics.get('sequences') or []]
    worst = [[_cell(frame.get('bag', ''), 120), str(frame.get('name', '')),
              _number(frame.get('miou'))] for frame in metrics.get('worst_frames') or []]
    return {'bags': bags, 'sequences': sequences, 'worst': worst}


def _without_bag(row: Dict[str, Any]) -> str:
    """Return a bag row's error without the bag path it starts with (the row names it)."""
    error = row.get('error') or ''
    prefix = f'{row["bag"]}: '
    return error[len(prefix):] if error.startswith(prefix) else error


def _comparison_rows(metrics: Dict[str, Any]) -> Dict[str, List[List[str]]]:
    """Return the A/B tables: side by side, per-class, per-bag and per-frame deltas."""
    comparison = metrics.get('comparison')
    candidate = metrics.get('candidate')
    if not comparison or not candidate:
        return {}

    def side(scores: Dict[str, Any]) -> List[Optional[float]]:
        seg, drivable = scores.get('segmentation', {}), scores.get('drivable') or {}
        throughput = scores.get('throughput') or {}
        return [seg.get('miou'), seg.get('pixel_accuracy'), drivable.get('iou'),
                drivable.get('precision'), drivable.get('recall'),
                throughput.get('segmenter_ms_per_frame')]

    names = ['mIoU', 'pixel accuracy', 'drivable IoU', 'drivable precision', 'drivable recall',
             'segmenter ms/frame']
    side_by_side = [['model', _cell(comparison['a'], 120), _cell(comparison['b'], 120), '']]
    for name, a, b in zip(names, side(metrics), side(candidate)):
        delta = b - a if a is not None and b is not None else None
        side_by_side.append([name, _number(a), _number(b),
                             'n/a' if delta is None else f'{delta:+.4f}'])
    iou_a = metrics.get('segmentation', {}).get('iou', {})
    iou_b = candidate.get('segmentation', {}).get('iou', {})
    classes = [[name, _number(iou_a.get(name)), _number(iou_b.get(name)),
                'n/a' if value is None else f'{value:+.4f}']
               for name, value in comparison.get('per_class_delta', {}).items()]
    bags = [[_cell(row['bag'], 120), _number(row['miou_a']), _number(row['miou_b']),
             'n/a' if row['delta'] is None else f'{row["delta"]:+.4f}']
            for row in comparison.get('per_bag', [])]
    worse = [[_cell(f.get('bag', ''), 120), str(f['name']), _number(f['miou_a']),
              _number(f['miou_b']), f'{f["delta"]:+.4f}']
             for f in comparison.get('most_worse_frames', [])]
    return {'comparison': side_by_side, 'class_delta': classes, 'bag_delta': bags,
            'frames_worse': worse}


def _run_rows(metrics: Dict[str, Any]) -> List[List[str]]:
    """Return the facts of a run over bags: where it ran, workers, retries, times."""
    info = metrics.get('fleet')
    if not info:
        return []
    counts = dict(info.get('bags') or {})
    total = counts.pop('total', 0)
    rows = [['runner', str(info.get('runner'))]]
    if info.get('address'):
        rows.append(['ray address', str(info['address'])])
    rows += [['workers', str(info.get('workers'))], ['retries', str(info.get('retries', 0))],
             ['bags', f'{total} (' + ', '.join(f'{v} {k}' for k, v in counts.items()) + ')']]
    for key, label in (('startup_s', 'startup s (models, workers)'),
                       ('scoring_s', 'scoring s'), ('merge_s', 'merge s'),
                       ('frames_per_second', 'frames/s')):
        if info.get(key) is not None:
            rows.append([label, _number(info[key], 2)])
    return rows


HEADERS = {
    'summary': ['metric', 'value'],
    'comparison': ['metric', 'A', 'B', 'B - A'],
    'classes': ['class', 'IoU', 'GT pixels'],
    'class_delta': ['class', 'IoU A', 'IoU B', 'B - A'],
    'bags': ['bag', 'status', 'frames', 'mIoU', 'Road IoU', 'drivable precision',
             'drivable recall', 'segmenter p50 ms', 'attempts', 'what is wrong'],
    'sequences': ['sequence', 'bags', 'frames', 'mIoU', 'Road IoU', 'drivable precision',
                  'drivable recall', 'segmenter p50 ms'],
    'worst': ['bag', 'frame (stamp ns)', 'mIoU'],
    'bag_delta': ['bag', 'mIoU A', 'mIoU B', 'B - A'],
    'frames_worse': ['bag', 'frame (stamp ns)', 'mIoU A', 'mIoU B', 'B - A'],
    'operating': ['confidence threshold', 'drivable precision', 'drivable recall'],
    'skipped': ['skip reason', 'frames'],
    'latency': ['stage', 'p50 ms', 'p95 ms', 'p99 ms', 'mean ms'],
    'run': ['run', 'value'],
}
TITLES = {'summary': 'Summary', 'comparison': 'Comparison of model A and model B',
          'classes': 'Per-class IoU', 'class_delta': 'Per-class IoU delta (B - A)',
          'bags': 'Per-bag results', 'sequences': 'Per-sequence results',
          'worst': 'Worst frames across all bags',
          'bag_delta': 'Per-bag delta (mIoU, B - A)',
          'frames_worse': 'Frames where B is most worse than A',
          'operating': 'Drivable operating points (drivable.min_confidence)',
          'skipped': 'Skipped frames',
          'latency': 'Latency per stage', 'run': 'Run'}


def render_markdown(metrics: Dict[str, Any]) -> str:
    """Return the report as Markdown."""
    lines = [f'# Segmentation evaluation: {metrics.get("title", "")}'.rstrip(), '']
    lines += [f'**{line}**' for line in _headline(metrics)]
    for key, value in _source_lines(metrics):
        lines.append(f'- {key}: {value}')
    lines.append('')
    for key, rows in _rows(metrics).items():
        if not rows:
            continue
        lines += [f'## {TITLES[key]}', '', '| ' + ' | '.join(HEADERS[key]) + ' |',
                  '|' + '---|' * len(HEADERS[key])]
        lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
        lines.append('')
    lines.append('Classes absent from both ground truth and prediction are n/a and left out of '
                 'the mean; the ignore index is excluded. Figures: see report.html.')
    return '\n'.join(lines) + '\n'


def _source_lines(metrics: Dict[str, Any]) -> List[List[str]]:
    lines = []
    model = metrics.get('model') or {}
    if model:
        lines.append(['model', f'{model.get("path")} ({model.get("summary", "")})'])
    for key, value in (metrics.get('input') or {}).items():
        if value not in (None, ''):
            lines.append([key, str(value)])
    if metrics.get('created'):
        lines.append(['created', metrics['created']])
    return lines


def render_html(metrics: Dict[str, Any], figures: Dict[str, Optional[str]]) -> str:
    """Return a self-contained HTML report with the figures embedded."""
    esc = html.escape
    parts = ['<!DOCTYPE html><html><head><meta charset="utf-8">',
             f'<title>Segmentation evaluation {esc(str(metrics.get("title", "")))}</title>',
             '<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}'
             'table{border-collapse:collapse;margin:0.5em 0 1.5em}'
             'td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}'
             'td:first-child,th:first-child{text-align:left}'
             '.bad{background:#fdd;border:2px solid #c00;padding:0.6em;font-weight:bold}'
             'img{max-width:100%}</style></head><body>',
             f'<h1>Segmentation evaluation {esc(str(metrics.get("title", "")))}</h1>']
    parts += [f'<p class="bad">{esc(line)}</p>' for line in _headline(metrics)]
    parts.append('<ul>' + ''.join(f'<li>{esc(k)}: {esc(v)}</li>'
                                  for k, v in _source_lines(metrics)) + '</ul>')
    for key, rows in _rows(metrics).items():
        if not rows:
            continue
        parts.append(f'<h2>{TITLES[key]}</h2><table><tr>'
                     + ''.join(f'<th>{esc(h)}</th>' for h in HEADERS[key]) + '</tr>')
        parts += ['<tr>' + ''.join(f'<td>{esc(c)}</td>' for c in row) + '</tr>' for row in rows]
        parts.append('</table>')
    for title, key in (('Per-class IoU', 'iou'), ('Confusion matrix', 'confusion'),
                       ('Drivable precision and recall by confidence threshold', 'operating'),
                       ('Worst and best frames', 'strip'), ('Latency', 'latency')):
        if figures.get(key):
            parts.append(f'<h2>{title}</h2><img alt="{esc(title)}" '
                         f'src="data:image/png;base64,{figures[key]}">')
    parts.append('</body></html>')
    return '\n'.join(parts) + '\n'


def invalidate(out_dir: str) -> None:
    """
    Create out_dir and remove the report of an earlier run, metrics.json first.

    Called before a run starts, so that a run that fails leaves no older report that would pass
    for its result.
    """
    os.makedirs(out_dir, exist_ok=True)
    for name in REPORT_FILES:
        path = os.path.join(out_dir, name)
        if os.path.lexists(path):
            os.unlink(path)


def write_report(out_dir: str, metrics: Dict[str, Any], confusion: Optional[np.ndarray],
                 class_names: Sequence[str], palette: Optional[np.ndarray] = None,
                 worst: Sequence[Thumbnail] = (), best: Sequence[Thumbnail] = (),
                 latencies: Optional[Dict[str, Sequence[float]]] = None) -> List[str]:
    """
    Write report.md, report.html and, last, metrics.json into out_dir; return their paths.

    Each file is complete or absent. If one cannot be written, the files of this report are
    removed, :func:`write_failure` records the error, and the OSError (naming the file) is
    raised.
    """
    invalidate(out_dir)
    metrics = json_safe(metrics)
    figures: Dict[str, Optional[str]] = {}
    iou = list((metrics.get('segmentation') or {}).get('iou', {}).values())
    if confusion is not None and np.asarray(confusion).sum() > 0:
        colors = palette[:len(class_names)] if palette is not None else None
        figures['iou'] = figure_iou(class_names, iou, colors)
        figures['confusion'] = figure_confusion(confusion, class_names)
    figures['strip'] = figure_strip(worst, best)
    figures['latency'] = figure_latency(latencies or {})
    figures['operating'] = figure_operating_points(metrics.get('drivable_operating_points'))
    contents = {MARKDOWN_FILE: render_markdown(metrics),
                HTML_FILE: render_html(metrics, figures),
                METRICS_FILE: _metrics_text(metrics)}
    try:
        for name, text in contents.items():
            atomic.write_text(os.path.join(out_dir, name), text)
    except OSError as error:
        invalidate(out_dir)
        write_failure(out_dir, error, metrics)
        raise
    return [os.path.join(out_dir, name) for name in REPORT_FILES]


def write_failure(out_dir: str, error: BaseException,
                  metrics: Optional[Dict[str, Any]] = None) -> bool:
    """
    Write a metrics.json that says the run failed and why; return False if even that fails.

    ``metrics`` (what the run measured, if it got that far) is kept with ``complete: false``.
    Best effort on a full disk: the error that caused it is the one the caller raises.
    """
    failed = dict(metrics or {'title': os.path.basename(os.path.normpath(out_dir)),
                              'tool': 'seg-perception evaluate'})
    earlier = failed.get('error')
    failed['complete'] = False
    failed['error'] = describe_error(error) + (f'; and before that: {earlier}' if earlier else '')
    try:
        atomic.write_text(os.path.join(out_dir, METRICS_FILE), _metrics_text(json_safe(failed)))
    except OSError:
        return False
    return True


def describe_error(error: BaseException) -> str:
    """Return an error as one line; an OSError as 'file: reason' (the file it could not write)."""
    if isinstance(error, OSError) and error.filename is not None:
        return f'{error.filename}: {error.strerror or error}'
    text = ' '.join(str(error).split())
    return text or type(error).__name__


def _metrics_text(metrics: Dict[str, Any]) -> str:
    return json.dumps(metrics, indent=1) + '\n'
