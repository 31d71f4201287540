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
The node demo: start ``segmentation_node``, publish the CamVid samples, save what it published.

:func:`run_node_demo` takes the ``seg-perception demo`` options (``--out``, ``--backend``,
``--alpha``) and the images and model :mod:`seg_perception.tools.demo` resolved (this module
imports nothing from it, so the two are no circle): it starts the node as a subprocess with the
shipped DDS profile, publishes every image as a ``sensor_msgs/Image`` (bgr8, as a camera driver
would), and writes ``<name>_overlay.png``, ``<name>_drivable.png`` and ``<name>_labels.png``
from the ``~/overlay``, ``~/drivable_mask`` and ``~/labels`` messages it receives back.
"""

import argparse
import os
from pathlib import Path
import tempfile
from typing import List, Sequence, Tuple

import cv2

from seg_perception.core.errors import DataError, SegPerceptionError


NODE_NAME = 'segmentation_demo'
START_TIMEOUT_S = 120.0
FRAME_TIMEOUT_S = 30.0
OUTPUTS = ('labels', 'drivable_mask', 'overlay')


def read_frames(paths: Sequence[Path]) -> List[Tuple[str, object]]:
    """Return [(name, RGB array)] of image files."""
    frames = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f'{path}: not a readable image')
        frames.append((os.path.splitext(os.path.basename(path))[0],
                       cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return frames


def run_node_demo(args: argparse.Namespace, images: Sequence[Path], model: str,
                  untrained: bool = False) -> int:
    """Run the node on the images and write the overlays it published; return 0."""
    from seg_perception.ros.dds import apply_profile
    from seg_perception.ros.harness.peer import image_array, NodeProcess, Peer, stamp_ns

    frames = read_frames(images)
    os.makedirs(args.out, exist_ok=True)
    apply_profile()
    with tempfile.TemporaryDirectory(prefix='seg_node_demo_') as scratch:
        node = NodeProcess({'model_path': model, 'backend': args.backend,
                            'overlay_alpha': float(args.alpha)}, name=NODE_NAME,
                           log_dir=scratch)
        peer = Peer(node.fqn, outputs=OUTPUTS, name='demo_camera')
        try:
            print(f'node demo: {node.fqn} on {len(frames)} images, model {model}'
                  f'{" (UNTRAINED)" if untrained else ""}')
            first = peer.make_message(cv2.cvtColor(frames[0][1], cv2.COLOR_RGB2BGR), 'bgr8')
            if not peer.wait_ready(first, START_TIMEOUT_S, output='overlay',
                                   alive=node.running):
                state = ('exited' if not node.running() else
                         f'sent no ~/overlay within {START_TIMEOUT_S:.0f} s')
                raise SegPerceptionError(f'{node.fqn} {state}; node log:\n'
                                         f'{node.log()[-2000:]}')
            for name, rgb in frames:
                msg = peer.make_message(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 'bgr8',
                                        frame_id=name)
                stamp = peer.publish(msg)
                outputs = {output: peer.wait_for_stamp(stamp, FRAME_TIMEOUT_S, output)
                           for output in OUTPUTS}
                missing = [output for output, out in outputs.items() if out is None]
                if missing:
                    raise SegPerceptionError(f'{node.fqn}: no {missing} for {name} within '
                                             f'{FRAME_TIMEOUT_S:.0f} s')
                latency = (max(a for a, m in peer.messages('labels') if stamp_ns(m) == stamp)
                           - stamp) / 1e6
                cv2.imwrite(os.path.join(args.out, f'{name}_overlay.png'),
                            cv2.cvtColor(image_array(outputs['overlay']), cv2.COLOR_RGB2BGR))
                cv2.imwrite(os.path.join(args.out, f'{name}_drivable.png'),
                            image_array(outputs['drivable_mask']))
                cv2.imwrite(os.path.join(args.out, f'{name}_labels.png'),
                            image_array(outputs['labels']))
                print(f'  {name}: {msg.width}x{msg.height} -> labels in {latency:.1f} ms')
            diagnostics = peer.wait_for_diagnostics(lambda v: 'latency.infer.p50_ms' in v,
                                                    FRAME_TIMEOUT_S)
        finally:
            peer.close()
            node.stop()
    print(f"wrote {3 * len(frames)} PNGs from the node's ~/overlay, ~/drivable_mask and "
          f'~/labels to {args.out}')
    if diagnostics:
        print(f'node diagnostics: backend {diagnostics.get("backend")} '
              f'{diagnostics.get("provider")}, infer p50 '
              f'{diagnostics["latency.infer.p50_ms"]} ms, camera stamp -> publish p50 '
              f'{diagnostics.get("latency.stamp_to_publish.p50_ms")} ms')
    return 0
