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

"""~/drivable_grid over real DDS: the node's mask on the ground plane, from a FOV or CameraInfo."""

import math

from nav_msgs.msg import OccupancyGrid
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from seg_perception.core.ground_grid import FREE, GridConfig, GroundProjector, Intrinsics
from seg_perception.ros.dds import apply_profile
from seg_perception.ros.parameters import load_defaults
from seg_perception.ros.harness.peer import image_array, NodeProcess, Peer, stamp_ns, wait_until

from node_helpers import raw_message

apply_profile()

pytestmark = pytest.mark.ros
START_TIMEOUT = 90.0
FRAME_TIMEOUT = 20.0
GRID = GridConfig(resolution=0.2, length=24.0, width=16.0, start=1.0, camera_height=1.4,
                  camera_pitch=0.05)
PARAMETERS = {'model_path': '', 'num_threads': 1, 'diagnostics_period': 0.5,
              'publish_drivable_grid': True, 'drivable_grid.resolution': GRID.resolution,
              'drivable_grid.length': GRID.length, 'drivable_grid.width': GRID.width,
              'drivable_grid.start': GRID.start,
              'drivable_grid.camera_height': GRID.camera_height,
              'drivable_grid.camera_pitch': GRID.camera_pitch,
              'drivable_grid.horizontal_fov': 70.0}


@pytest.fixture(scope='module')
def grid_node(tmp_path_factory):
    """Start the node with the bundled model and the grid on, and a peer listening to it."""
    node = NodeProcess(PARAMETERS, name='segmentation_grid',
                       log_dir=str(tmp_path_factory.mktemp('grid_node')))
    peer = Peer(node.fqn, outputs=('labels', 'drivable_mask'))
    peer.subscribe('drivable_grid', OccupancyGrid)
    yield node, peer
    peer.close()
    assert node.stop() == 0, node.log()


def round_trip(peer, node, rgb, frame_id):
    """Send one frame until its grid and mask come back; return (image msg, grid, mask)."""
    deadline = FRAME_TIMEOUT
    for _ in range(int(deadline / 2)):
        msg = raw_message(rgb, 'rgb8', frame_id)
        stamp = peer.publish(msg)
        grid = peer.wait_for_stamp(stamp, 2.0, 'drivable_grid')
        if grid is not None:
            mask = peer.wait_for_stamp(stamp, FRAME_TIMEOUT, 'drivable_mask')
            return msg, grid, image_array(mask)
    raise AssertionError(f'no ~/drivable_grid for {frame_id}; node log:\n{node.log()[-2000:]}')


def check_grid(grid, msg, mask, intrinsics):
    """Check the image header, the configured extent and the core projection's cells."""
    assert stamp_ns(grid) == stamp_ns(msg) and grid.header.frame_id == msg.header.frame_id
    columns, rows = GRID.cells
    assert (grid.info.width, grid.info.height) == (columns, rows) == (120, 80)
    assert grid.info.resolution == pytest.approx(GRID.resolution)
    projector = GroundProjector(GRID, intrinsics)
    expected = projector.project(mask)
    cells = np.array(grid.data, np.int8).reshape(rows, columns)
    assert np.array_equal(cells, expected)
    position, orientation = projector.origin_in_camera()
    origin = grid.info.origin
    assert (origin.position.x, origin.position.y, origin.position.z) == pytest.approx(position)
    assert (origin.orientation.x, origin.orientation.y, origin.orientation.z,
            origin.orientation.w) == pytest.approx(orientation)
    return cells


def test_grid_from_the_field_of_view_then_from_camera_info(grid_node, camvid_samples):
    node, peer = grid_node
    assert peer.wait_for_node(START_TIMEOUT), node.log()
    rgb = camvid_samples[0][1]
    height, width = rgb.shape[:2]

    msg, grid, mask = round_trip(peer, node, rgb, 'front_camera_optical')
    cells = check_grid(grid, msg, mask, Intrinsics.from_fov(width, height, 70.0))
    # the road ahead of a CamVid car: a good share of the cells straight ahead are free
    ahead = cells[rows_near_centre(cells.shape[0]), :]
    assert np.mean(ahead == FREE) > 0.3, np.unique(cells, return_counts=True)

    # a CameraInfo at half the image size: its K is rescaled to the image
    info = CameraInfo(width=width // 2, height=height // 2)
    info.k = [200.0, 0.0, 118.0, 0.0, 210.0, 92.0, 0.0, 0.0, 1.0]
    expected_intrinsics = Intrinsics.from_k(info.k, info.width, info.height).scaled(width, height)
    projected = None
    for _ in range(int(FRAME_TIMEOUT)):
        peer.publish_camera_info(info)
        msg, grid, mask = round_trip(peer, node, rgb, 'front_camera_optical')
        fov_projection = GroundProjector(GRID, Intrinsics.from_fov(width, height, 70.0))
        if not np.array_equal(np.array(grid.data, np.int8).reshape(GRID.cells[::-1]),
                              fov_projection.project(mask)):
            projected = grid
            break
    assert projected is not None, 'the CameraInfo never took effect'
    check_grid(projected, msg, mask, expected_intrinsics)


def rows_near_centre(rows: int) -> slice:
    """Return the grid rows within 1 m of the camera's centre line (y = 0)."""
    half = int(round(1.0 / GRID.resolution))
    return slice(rows // 2 - half, rows // 2 + half)


def test_bad_grid_values_and_camera_info_are_refused(grid_node):
    node, peer = grid_node
    assert peer.wait_for_node(START_TIMEOUT), node.log()
    # parameters are set one by one: the fine resolution alone is fine, the length then is not
    fine, huge = peer.set_parameters({'drivable_grid.resolution': 0.01,
                                      'drivable_grid.length': 1000.0})
    assert fine.successful and not huge.successful and 'too many' in huge.reason, huge.reason
    assert peer.set_parameters({'drivable_grid.resolution': GRID.resolution})[0].successful
    assert peer.get_parameters(['drivable_grid.length'])['drivable_grid.length'] == \
        pytest.approx(GRID.length)
    before = int(peer.fresh_diagnostics(FRAME_TIMEOUT).get('rejected.bad_camera_info', 0))
    peer.publish_camera_info(CameraInfo(width=640, height=480))  # K all zeros: uncalibrated
    assert wait_until(lambda: int(peer.fresh_diagnostics(FRAME_TIMEOUT).get(
        'rejected.bad_camera_info', 0)) > before, FRAME_TIMEOUT), peer.latest_diagnostics()
    assert 'bad_camera_info' in node.log()


def hostile_camera_infos(width, height):
    """Return {what: CameraInfo} that a DDS peer could send: NaN, inf, absurd K or size."""
    good = [300.0, 0.0, width / 2, 0.0, 300.0, height / 2, 0.0, 0.0, 1.0]
    cases = {}
    for what, k, size in [('nan fx', [math.nan] + good[1:], (width, height)),
                          ('inf cx', good[:2] + [math.inf] + good[3:], (width, height)),
                          ('fx 1e-300', [1e-300] + good[1:], (width, height)),
                          ('width 4e9', good, (4_000_000_000, height)),
                          ('cx far outside', good[:2] + [1e7] + good[3:], (width, height))]:
        info = CameraInfo(width=size[0], height=size[1])
        info.k = k
        cases[what] = info
    return cases


def test_hostile_camera_info_is_counted_and_the_last_good_one_kept(grid_node, camvid_samples):
    """NaN/inf or absurd intrinsics: each counted as bad_camera_info; the grid keeps the last K."""
    node, peer = grid_node
    assert peer.wait_for_node(START_TIMEOUT), node.log()
    rgb = camvid_samples[2][1]
    height, width = rgb.shape[:2]
    good = CameraInfo(width=width, height=height)
    good.k = [320.0, 0.0, width / 2 + 7, 0.0, 330.0, height / 2 - 5, 0.0, 0.0, 1.0]
    intrinsics = Intrinsics.from_k(good.k, width, height)
    projector = GroundProjector(GRID, intrinsics)

    def grid_uses_good_k():
        msg, grid, mask = round_trip(peer, node, rgb, 'hostile_camera_info')
        cells = np.array(grid.data, np.int8).reshape(GRID.cells[::-1])
        return np.array_equal(cells, projector.project(mask))
    assert wait_until(lambda: peer.publish_camera_info(good) or grid_uses_good_k(),
                      FRAME_TIMEOUT, period=0.2), 'the good CameraInfo never took effect'
    counted = int(peer.fresh_diagnostics(FRAME_TIMEOUT).get('rejected.bad_camera_info', 0))
    for what, info in hostile_camera_infos(width, height).items():
        peer.publish_camera_info(info)
        values = peer.wait_for_diagnostics(
            lambda v: int(v.get('rejected.bad_camera_info', 0)) > counted, FRAME_TIMEOUT)
        assert values, f'{what}: not counted; {peer.latest_diagnostics()}'
        counted = int(values['rejected.bad_camera_info'])
        assert grid_uses_good_k(), f'{what} replaced the last good CameraInfo'
    log = node.log()
    assert 'not a calibrated pinhole' in log and 'bad_camera_info' in log


def test_yaml_defaults_are_the_core_grid_defaults():
    defaults, core = load_defaults(), GridConfig()
    for field in ('resolution', 'length', 'width', 'start', 'camera_height', 'camera_pitch'):
        assert math.isclose(defaults[f'drivable_grid.{field}'], getattr(core, field)), field
    assert defaults['publish_drivable_grid'] is False


def test_yaml_defaults_are_the_core_drivable_defaults():
    from seg_perception.core.drivable import DrivableConfig
    from seg_perception.ros.parameters import DRIVABLE_FIELDS
    defaults, core = load_defaults(), DrivableConfig()
    assert set(DRIVABLE_FIELDS) == set(core.__dataclass_fields__)
    for field in DRIVABLE_FIELDS:
        assert defaults[f'drivable.{field}'] == getattr(core, field), field


def test_bundled_model_publishes_confidence_and_gates_the_drivable_mask(camvid_samples,
                                                                        tmp_path):
    """
    The bundled model's fused confidence reaches ~/confidence and gates the drivable mask.

    ~/confidence has the input's size and header; drivable.min_confidence, set at run time,
    gates the next frame's mask exactly as the core does.
    """
    from seg_perception.core import Segmenter
    from seg_perception.core.drivable import DrivableConfig
    node = NodeProcess({'num_threads': 1, 'diagnostics_period': 0.5}, name='segmentation_gate',
                       log_dir=str(tmp_path))
    peer = Peer(node.fqn, outputs=('labels', 'drivable_mask', 'confidence'))
    rgb = camvid_samples[0][1]
    try:
        probe = peer.make_message(rgb, 'rgb8', frame_id='probe')
        assert peer.wait_ready(probe, 90.0, output='confidence'), node.log()
        masks = {}
        for threshold in (0, 200):
            assert peer.set_parameters({'drivable.min_confidence': threshold})[0].successful
            msg = peer.make_message(rgb, 'rgb8', frame_id=f'gate_{threshold}')
            stamp = peer.publish(msg)
            confidence = peer.wait_for_stamp(stamp, 30.0, 'confidence')
            mask = peer.wait_for_stamp(stamp, 30.0, 'drivable_mask')
            assert confidence is not None and mask is not None, node.log()[-2000:]
            assert confidence.encoding == 'mono8'
            assert confidence.header.frame_id == f'gate_{threshold}'
            assert (confidence.height, confidence.width) == rgb.shape[:2]
            masks[threshold] = image_array(mask)
        refused = peer.set_parameters({'drivable.min_confidence': 300})[0]
        assert not refused.successful
    finally:
        peer.close()
        code = node.stop()
    assert code == 0, node.log()
    for threshold, mask in masks.items():
        with Segmenter(None, drivable_config=DrivableConfig(min_confidence=threshold)) as core:
            expected = core.process(rgb).drivable
        assert np.mean(mask == expected) >= 0.999, threshold
    assert np.count_nonzero(masks[200]) < np.count_nonzero(masks[0])
