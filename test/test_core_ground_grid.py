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

"""Bird's-eye drivable grid: a road drawn by casting pixel rays lands where the grid says."""

import math

import numpy as np
import pytest

from seg_perception.core import InputError
from seg_perception.core.ground_grid import (FREE, GridConfig, GroundProjector, Intrinsics,
                                             OCCUPIED, quaternion_from_matrix, UNKNOWN)

WIDTH, HEIGHT = 640, 480
K = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
CONFIG = GridConfig(resolution=0.2, length=30.0, width=20.0, start=0.0, camera_height=1.5,
                    camera_pitch=math.radians(8))


def road_mask(projector, half_width=2.0, near=4.0, far=25.0):
    """Draw a straight road |y| < half_width, near < x < far by casting every pixel's ray."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    x, y, hits = projector.ground_point(u, v)
    with np.errstate(invalid='ignore'):
        road = hits & (np.abs(y) < half_width) & (x > near) & (x < far)
    return np.where(road, 255, 0).astype(np.uint8)


@pytest.fixture(scope='module')
def projector():
    return GroundProjector(CONFIG, Intrinsics.from_k(K, WIDTH, HEIGHT))


def test_a_road_in_the_image_is_a_free_strip_on_the_grid(projector):
    grid = projector.project(road_mask(projector))
    assert grid.dtype == np.int8 and grid.shape == (100, 150)  # rows along y, columns along x
    x, y = CONFIG.cell_centers()
    u, v, in_front = projector.project_points(x, y)
    visible = in_front & (u >= 0) & (u <= WIDTH - 1) & (v >= 0) & (v <= HEIGHT - 1)
    hidden = ~in_front | (u < -1) | (u > WIDTH) | (v < -1) | (v > HEIGHT)  # 1 px margin
    inside = visible & (np.abs(y) < 1.8) & (x > 4.5) & (x < 24.0)
    outside = visible & ((np.abs(y) > 2.2) | (x < 3.5) | (x > 26.0))
    assert inside.sum() > 1000 and outside.sum() > 1000
    assert np.mean(grid[inside] == FREE) >= 0.99
    assert np.mean(grid[outside] == OCCUPIED) >= 0.99
    assert hidden.sum() > 1000 and (grid[hidden] == UNKNOWN).all()
    # the camera sees nothing beside itself: cells at x < 1 m, |y| > 5 m are unknown
    assert (grid[(x < 1.0) & (np.abs(y) > 5.0)] == UNKNOWN).all()


def test_origin_pose_maps_cells_to_the_pixels_they_sample(projector):
    """Cell centres placed with the published origin pose project to the sampled pixels."""
    position, (qx, qy, qz, qw) = projector.origin_in_camera()
    rotation = np.array([
        [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
        [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
        [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)]])
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    # cell (row j, column i) centre in the grid frame, then in the optical frame
    rows, cols = 7, 40
    local = np.array([(cols + 0.5) * CONFIG.resolution, (rows + 0.5) * CONFIG.resolution, 0.0])
    optical = rotation @ local + np.array(position)
    u = K[0] * optical[0] / optical[2] + K[2]
    v = K[4] * optical[1] / optical[2] + K[5]
    x, y = CONFIG.cell_centers()
    expected_u, expected_v, _ = projector.project_points(x[rows, cols], y[rows, cols])
    assert u == pytest.approx(float(expected_u), abs=1e-6)
    assert v == pytest.approx(float(expected_v), abs=1e-6)


def test_quaternion_of_known_rotations():
    assert quaternion_from_matrix(np.eye(3)) == pytest.approx((0, 0, 0, 1))
    half = math.sqrt(0.5)
    about_z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert quaternion_from_matrix(about_z) == pytest.approx((0, 0, half, half))
    flip_x = np.diag([1.0, -1.0, -1.0])
    assert quaternion_from_matrix(flip_x) == pytest.approx((1, 0, 0, 0))


def test_intrinsics_from_fov_and_scaling():
    fov = Intrinsics.from_fov(640, 480, 90.0)
    assert fov.fx == pytest.approx(320.0) and (fov.cx, fov.cy) == (320.0, 240.0)
    half = Intrinsics.from_k(K, WIDTH, HEIGHT).scaled(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 250.0, 160.0, 120.0)


def test_bad_grid_and_camera_values_are_named():
    with pytest.raises(InputError, match='resolution'):
        GridConfig(resolution=0.0)
    with pytest.raises(InputError, match='camera_pitch'):
        GridConfig(camera_pitch=2.0)
    with pytest.raises(InputError, match='too many'):
        GridConfig(resolution=0.001)
    with pytest.raises(InputError, match='pinhole'):
        Intrinsics.from_k([0.0] * 9, WIDTH, HEIGHT)
    projector = GroundProjector(CONFIG, Intrinsics.from_k(K, WIDTH, HEIGHT))
    with pytest.raises(InputError, match='does not match'):
        projector.project(np.zeros((HEIGHT // 2, WIDTH // 2), np.uint8))


@pytest.mark.parametrize('k, width, height, named', [
    ([math.nan] + K[1:], WIDTH, HEIGHT, 'finite'),
    (K[:2] + [math.inf] + K[3:], WIDTH, HEIGHT, 'finite'),
    ([1e-300] + K[1:], WIDTH, HEIGHT, 'field of view'),
    ([1e300] + K[1:], WIDTH, HEIGHT, 'field of view'),
    (K[:4] + [-500.0] + K[5:], WIDTH, HEIGHT, 'field of view'),
    (K[:4] + [40.0] + K[5:], WIDTH, HEIGHT, 'pixel aspect'),
    (K, 4_000_000_000, HEIGHT, 'size'),
    (K, WIDTH, 0, 'size'),
    (K[:2] + [1e6] + K[3:], WIDTH, HEIGHT, 'principal point'),
    (K[:5] + [-400.0] + K[6:], WIDTH, HEIGHT, 'principal point'),
    (K[:8] + [0.0], WIDTH, HEIGHT, 'last row'),
    (K[:6] + [0.5] + K[7:], WIDTH, HEIGHT, 'last row'),
    (K[:8], WIDTH, HEIGHT, '9 values'),
])
def test_camera_info_that_is_no_sane_pinhole_is_refused(k, width, height, named):
    """NaN/inf, absurd focal lengths or sizes, a far principal point: refused, naming why."""
    with pytest.raises(InputError, match=named) as caught:
        Intrinsics.from_k(k, width, height)
    assert caught.value.reason == 'bad_camera_info'


def test_real_calibrations_are_accepted():
    """Wide and narrow lenses, non-square pixels and an off-centre principal point pass."""
    for k, width, height in [
            ([260.0, 0.0, 322.0, 0.0, 258.0, 236.0, 0.0, 0.0, 1.0], 640, 480),  # ~100 deg
            ([18000.0, 0.0, 960.0, 0.0, 18000.0, 540.0, 0.0, 0.0, 1.0], 1920, 1080),  # ~6 deg
            ([700.0, 0.1, 700.0, 0.0, 1050.0, 100.0, 0.0, 0.0, 1.0], 752, 480),  # 1.5 aspect
            (K[:2] + [-100.0] + K[3:], WIDTH, HEIGHT)]:  # principal point left of the image
        intrinsics = Intrinsics.from_k(k, width, height)
        assert (intrinsics.fx, intrinsics.cx) == (k[0], k[2])
