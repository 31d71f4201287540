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
``seg-perception make-bag``: turn an image folder (and its label folder) into a bag.

Frames are sorted by file name and stamped ``1 / rate`` apart; the header stamp is also the log
time. Labels (matched by file stem) go on a mono8 topic with the same stamps, so ``evaluate
--bag`` can match them; ``--camera-info`` adds a CameraInfo per frame from a calibration YAML
in the format of the ROS ``camera_calibration`` package. The bag appears under ``--out`` only
when it was written completely (:class:`~seg_perception.io.bags.BagWriter`): a failure, a full
disk included, leaves nothing there.
"""

import argparse
import decimal
import time
from typing import Any, Dict, List, Optional, Sequence

from tqdm import tqdm

from seg_perception.core.errors import DataError, UsageError
from seg_perception.core.spec import load_class_table, read_yaml
from seg_perception.io import bags as bagio
from seg_perception.io import frames
from seg_perception.tools.argtypes import positive_float, positive_int, topic_name


DEFAULT_RATE_HZ = 10.0
MAX_START_STAMP_S = 2.0 ** 31 - 3600.0  # builtin_interfaces/Time.sec is int32; room for the frames
DEFAULT_FRAME_ID = 'camera'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the make-bag options."""
    parser.add_argument('--images', required=True, metavar='DIR',
                        help='folder of .png/.jpg frames, sorted by file name')
    parser.add_argument('--labels', metavar='DIR',
                        help='folder of 8-bit label PNGs with the same file stems (optional)')
    parser.add_argument('--out', required=True, metavar='OUT',
                        help='OUT.mcap or OUT.db3 (one ROS 2 file), OUT.bag (ROS 1), or a '
                             'folder for a ROS 2 bag directory; must not exist')
    parser.add_argument('--rate', type=positive_float, default=DEFAULT_RATE_HZ, metavar='HZ',
                        help=f'frame rate of the stamps (default {DEFAULT_RATE_HZ})')
    parser.add_argument('--compressed', choices=('jpeg', 'png'),
                        help='write sensor_msgs/CompressedImage on TOPIC/compressed (the '
                             'image_transport name) instead of raw sensor_msgs/Image on TOPIC')
    parser.add_argument('--frame-id', default=DEFAULT_FRAME_ID,
                        help=f'header frame_id (default {DEFAULT_FRAME_ID})')
    parser.add_argument('--camera-info', metavar='K.yaml',
                        help='camera calibration YAML (camera_calibration format): adds '
                             'sensor_msgs/CameraInfo on --camera-info-topic')
    parser.add_argument('--topic', type=topic_name, default=bagio.DEFAULT_IMAGE_TOPIC,
                        help='image topic (default %(default)s)')
    parser.add_argument('--labels-topic', type=topic_name, default=bagio.DEFAULT_GT_TOPIC,
                        help='ground-truth label topic, mono8 (default %(default)s)')
    parser.add_argument('--camera-info-topic', type=topic_name,
                        default=bagio.DEFAULT_CAMERA_INFO_TOPIC,
                        help='default %(default)s')
    parser.add_argument('--classes', metavar='TABLE',
                        help='class table (name or YAML) whose label LUT is applied to the '
                             'labels, e.g. camvid maps void 11 to 255; default: labels as-is')
    parser.add_argument('--start-stamp', type=stamp_seconds, metavar='SEC',
                        help='stamp of the first frame in seconds since the epoch (default: now)')
    parser.add_argument('--storage', choices=bagio.STORAGES, default=bagio.DEFAULT_STORAGE,
                        help='storage of a bag directory output (default %(default)s)')
    parser.add_argument('--distro', choices=[d for d in bagio.DISTROS if d != 'noetic'],
                        default=bagio.DEFAULT_DISTRO,
                        help='message definitions stored in a ROS 2 bag (default %(default)s)')
    parser.add_argument('--max', type=positive_int, metavar='N', help='use at most N frames')


def stamp_seconds(text: str) -> int:
    """Parse seconds since the epoch exactly (no float rounding) into nanoseconds."""
    try:
        seconds = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number of seconds') from None
    if not seconds.is_finite() or not 0 <= seconds <= decimal.Decimal(MAX_START_STAMP_S):
        raise argparse.ArgumentTypeError(f'{text!r} must be in [0, {MAX_START_STAMP_S:.0f}] s '
                                         '(builtin_interfaces/Time.sec is int32)')
    return int(seconds * 1_000_000_000)


def load_camera_info(path: str) -> Dict[str, Any]:
    """
    Read a camera_calibration YAML; return width, height, distortion model, d, k, r, p.

    Errors name the file and the field: a missing key, or a matrix with the wrong element count.
    """
    data = read_yaml(path, 'camera calibration', DataError)
    if not isinstance(data, dict):
        raise DataError(f'{path}: expected a camera calibration mapping (image_width, '
                        'camera_matrix, ...)')

    def matrix(key: str, sizes: Sequence[int], default: Optional[List[float]] = None
               ) -> List[float]:
        value = data.get(key)
        if value is None:
            if default is not None:
                return default
            raise DataError(f'{path}: field {key!r} is missing')
        values = value.get('data') if isinstance(value, dict) else value
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            raise DataError(f'{path}: field {key!r} must hold a list of numbers') from None
        if len(values) not in sizes:
            raise DataError(f'{path}: field {key!r} has {len(values)} values, expected '
                            f'{" or ".join(str(s) for s in sizes)}')
        return values

    try:
        width, height = int(data['image_width']), int(data['image_height'])
    except KeyError as error:
        raise DataError(f'{path}: field {error.args[0]!r} is missing') from None
    except (TypeError, ValueError):
        raise DataError(f'{path}: image_width and image_height must be integers') from None
    identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    k = matrix('camera_matrix', (9,))
    d = matrix('distortion_coefficients', range(0, 15), [])
    r = matrix('rectification_matrix', (9,), identity)
    p = matrix('projection_matrix', (12,), k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0])
    guess = ('plumb_bob' if len(d) in (0, 5) else 'equidistant' if len(d) == 4 else
             'rational_polynomial')  # the sensor_msgs/distortion_models names
    model = str(data.get('distortion_model', guess))
    return {'width': width, 'height': height, 'distortion_model': model, 'd': d, 'k': k,
            'r': r, 'p': p}


def run(args: argparse.Namespace) -> int:
    """Write the bag; print one summary line."""
    topic = args.topic.rstrip('/') + ('/compressed' if args.compressed else '')
    taken = [topic] + ([args.labels_topic] if args.labels else []) + (
        [args.camera_info_topic] if args.camera_info else [])
    if len(set(taken)) != len(taken):
        raise UsageError(f'image, label and camera_info topics must differ, got {taken}')
    lut = load_class_table(args.classes).label_lut() if args.classes else None
    jobs, orphans = frames.folder_jobs(args.images, args.labels, lut, limit=args.max)
    unlabelled = [job for job in jobs if job.skip == 'no_gt']
    if args.labels and jobs and len(unlabelled) == len(jobs):
        raise DataError(f'{args.labels}: no label file has the name of an image in '
                        f'{args.images} (e.g. {jobs[0].name}.png)')
    for job in unlabelled:
        job.skip = None  # the frame goes into the bag without a label
    calibration = load_camera_info(args.camera_info) if args.camera_info else None
    start = time.time_ns() if args.start_stamp is None else args.start_stamp
    period = 1e9 / args.rate
    writer = bagio.BagWriter(args.out, storage=args.storage, distro=args.distro)
    try:
        labelled = _write_frames(args, writer, jobs, topic, calibration, start, period)
        writer.close()
    except BaseException:
        writer.discard()  # no half-written evaluation bag
        raise
    parts = [f'{len(jobs)} frames on {topic}']
    if args.labels:
        parts.append(f'{labelled} labels on {args.labels_topic}')
        if labelled < len(jobs):
            parts.append(f'{len(jobs) - labelled} frames without a label file')
        if orphans:
            parts.append(f'{orphans} label files without an image ignored')
    if calibration is not None:
        parts.append(f'camera_info on {args.camera_info_topic}')
    seconds = (len(jobs) - 1) * period / 1e9 if jobs else 0.0
    print(f'make-bag: wrote {args.out}: {", ".join(parts)}; {seconds:.1f} s at {args.rate:g} Hz')
    return 0


def _write_frames(args: argparse.Namespace, writer: Any, jobs: List[Any], topic: str,
                  calibration: Optional[Dict[str, Any]], start: int, period: float) -> int:
    """Decode the frames in a worker pool and write them in order; return the label count."""
    store = writer.store
    labelled = 0
    decoded = frames.ordered_map(frames.decode, jobs, frames.default_workers())
    for frame in tqdm(decoded, total=len(jobs), desc='make-bag', unit='frame', disable=None):
        job = frame.job
        if frame.skip:
            raise DataError(frame.skip_message)
        stamp = start + int(round(job.index * period))
        header = bagio.make_header(store, stamp, args.frame_id, seq=job.index)
        if args.compressed:
            message = bagio.make_compressed_image(store, frame.image, frame.encoding,
                                                  args.compressed, header)
        else:
            message = bagio.make_image(store, frame.image, frame.encoding, header)
        writer.write(topic, stamp, message)
        if calibration is not None:
            height, width = frame.image.shape[:2]
            if (calibration['width'], calibration['height']) != (width, height):
                raise DataError(f'{args.camera_info}: calibration is for '
                                f'{calibration["width"]}x{calibration["height"]}, '
                                f'{job.name} is {width}x{height}')
            writer.write(args.camera_info_topic, stamp,
                         bagio.make_camera_info(store, header, **calibration))
        if frame.gt is not None:
            writer.write(args.labels_topic, stamp,
                         bagio.make_image(store, frame.gt, 'mono8', header))
            labelled += 1
    return labelled
