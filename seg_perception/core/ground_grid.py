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
Drivable mask -> bird's-eye occupancy grid on a flat ground plane (inverse perspective mapping).

The grid lies on the ground under the camera: x forward, y left (REP 103), cells of
``resolution`` metres, ``length`` metres ahead starting ``start`` metres in front of the camera and
``width`` metres across, centred. The camera is a pinhole (intrinsics from sensor_msgs/CameraInfo
``K``, or from a horizontal field of view) ``camera_height`` metres above the ground, pitched down
by ``camera_pitch`` radians, with no roll or yaw. Each cell takes the mask value at the pixel its
centre projects to (nearest): 0 = free (drivable), 100 = occupied (seen, not drivable), -1 =
unknown (outside the image or behind the camera), the nav_msgs/OccupancyGrid convention.

:meth:`GroundProjector.origin_in_camera` gives the pose of the grid's corner cell in the camera's
optical frame (x right, y down, z forward), so the grid can be published in the image's own
frame_id and tf places it correctly.
"""

from dataclasses import dataclass
import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from seg_perception.core.errors import InputError, quoted


FREE, OCCUPIED, UNKNOWN = 0, 100, -1
# What a CameraInfo K must satisfy (see pinhole_problem). The field of view range is the one of
# the drivable_grid.horizontal_fov parameter; no camera is wider than 65536 pixels.
FOV_RANGE_DEG = (1.0, 179.0)
PIXEL_ASPECT_RANGE = (0.25, 4.0)
PRINCIPAL_POINT_MARGIN = 0.25
MAX_CAMERA_SIDE = 65536
_OUTSIDE = 1  # remap border value: neither 0 nor 255, so it marks cells outside the image


@dataclass(frozen=True)
class GridConfig:
    """Extent of the grid and the camera's height and pitch; the single place of defaults."""

    resolution: float = 0.1  # metres per cell
    length: float = 30.0  # metres covered ahead, from ``start``
    width: float = 20.0  # metres covered across, centred on the camera
    start: float = 0.0  # metres from the point under the camera to the grid's near edge
    camera_height: float = 1.5  # metres above the ground
    camera_pitch: float = 0.0  # radians, positive = optical axis tilted down

    def __post_init__(self) -> None:
        """Validate; errors name the field."""
        for name in ('resolution', 'length', 'width', 'camera_height'):
            if not float(getattr(self, name)) > 0:
                raise InputError(f'GridConfig.{name} must be > 0, got {getattr(self, name)}',
                                 'bad_parameter')
        if not -math.pi / 2 < float(self.camera_pitch) < math.pi / 2:
            raise InputError(f'GridConfig.camera_pitch {self.camera_pitch} rad is outside '
                             '(-pi/2, pi/2)', 'bad_parameter')
        cells = self.cells
        if cells[0] * cells[1] > 4096 * 4096:
            raise InputError(f'GridConfig: {cells[0]}x{cells[1]} cells is too many (resolution '
                             f'{self.resolution} m over {self.length} x {self.width} m)',
                             'bad_parameter')

    @property
    def cells(self) -> Tuple[int, int]:
        """Return (cells along x = OccupancyGrid width, cells along y = OccupancyGrid height)."""
        return (max(1, int(round(self.length / self.resolution))),
                max(1, int(round(self.width / self.resolution))))

    def cell_centers(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return x and y (metres, ground frame) of every cell centre, shape (rows_y, cols_x)."""
        along, across = self.cells
        x = self.start + (np.arange(along) + 0.5) * self.resolution
        y = -self.width / 2 + (np.arange(across) + 0.5) * self.resolution
        return np.meshgrid(x, y)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics for an image of width x height pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> 'Intrinsics':
        """
        Build from a row-major 3x3 K (sensor_msgs/CameraInfo ``k``) after checking it is sane.

        CameraInfo comes from any DDS participant: a NaN, an absurd focal length or size would
        turn every grid cell unknown or occupied, so such a K raises InputError
        (``bad_camera_info``) naming what is wrong, and the caller keeps its last good one.
        """
        values = [float(v) for v in k]
        problem = pinhole_problem(values, int(width), int(height))
        if problem:
            raise InputError(f'camera intrinsics: K {quoted(values)} for {int(width)}x'
                             f'{int(height)} is not a calibrated pinhole: {problem}',
                             'bad_camera_info')
        return cls(values[0], values[4], values[2], values[5], int(width), int(height))

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float) -> 'Intrinsics':
        """Build square-pixel intrinsics centred on the image from a horizontal field of view."""
        if not 0 < horizontal_fov_deg < 180:
            raise InputError(f'horizontal field of view {horizontal_fov_deg} deg is outside '
                             '(0, 180)', 'bad_parameter')
        focal = (width / 2) / math.tan(math.radians(horizontal_fov_deg) / 2)
        return cls(focal, focal, width / 2, height / 2, int(width), int(height))

    def scaled(self, width: int, height: int) -> 'Intrinsics':
        """Return these intrinsics for the same camera at another image size."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)


def field_of_view_deg(focal: float, size: int) -> float:
    """Return the field of view in degrees of a pinhole with this focal length (pixels)."""
    return math.degrees(2.0 * math.atan2(size / 2.0, focal))


def pinhole_problem(k: Sequence[float], width: int, height: int) -> str:
    """
    Return why a row-major K for a width x height image is not a sane pinhole ('' if it is).

    Sane: 9 finite values, last row (0, 0, 1), a size of 1..MAX_CAMERA_SIDE pixels a side,
    fields of view within FOV_RANGE_DEG on both axes (a positive focal length), a pixel aspect
    fy / fx within PIXEL_ASPECT_RANGE and the principal point inside the image widened by
    PRINCIPAL_POINT_MARGIN of its size on each side.
    """
    if len(k) != 9:
        return f'expected 9 values, got {len(k)}'
    if not all(math.isfinite(v) for v in k):
        return 'the values are not all finite'
    if max(abs(k[3]), abs(k[6]), abs(k[7]), abs(k[8] - 1.0)) > 1e-6:
        return f'the last row is {k[6:]!r} (and k[3] {k[3]!r}), expected [0, 0, 1] (and 0)'
    if not (0 < width <= MAX_CAMERA_SIDE and 0 < height <= MAX_CAMERA_SIDE):
        return f'the size {width}x{height} is outside 1..{MAX_CAMERA_SIDE} pixels a side'
    low, high = FOV_RANGE_DEG
    for axis, focal, size in (('horizontal', k[0], width), ('vertical', k[4], height)):
        fov = field_of_view_deg(focal, size)
        if not low <= fov <= high:
            return (f'{axis} focal length {focal!r} over {size} pixels is a {fov:.4g} deg '
                    f'field of view, outside [{low:g}, {high:g}]')
    aspect = k[4] / k[0]
    if not PIXEL_ASPECT_RANGE[0] <= aspect <= PIXEL_ASPECT_RANGE[1]:
        return (f'the pixel aspect fy / fx = {aspect:.4g} is outside '
                f'[{PIXEL_ASPECT_RANGE[0]:g}, {PIXEL_ASPECT_RANGE[1]:g}]')
    margin = PRINCIPAL_POINT_MARGIN
    if not (-margin * width <= k[2] <= (1 + margin) * width and
            -margin * height <= k[5] <= (1 + margin) * height):
        return (f'the principal point ({k[2]!r}, {k[5]!r}) is not near the image (allowed '
                f'{margin:g} of its size outside)')
    return ''


def camera_axes(pitch: float) -> np.ndarray:
    """
    Return the optical axes (rows: x right, y down, z forward) in ground coordinates.

    Ground coordinates: x forward, y left, z up.
    """
    s, c = math.sin(pitch), math.cos(pitch)
    return np.array([[0.0, -1.0, 0.0], [-s, 0.0, -c], [c, 0.0, -s]])


def quaternion_from_matrix(rotation: np.ndarray) -> Tuple[float, float, float, float]:
    """Return (x, y, z, w) of a proper rotation matrix."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s
    return tuple(float(v) for v in q)


class GroundProjector:
    """Precomputed cell -> pixel lookup for one grid, camera pose and image size."""

    def __init__(self, config: GridConfig, intrinsics: Intrinsics) -> None:
        """Project every cell centre into the image once."""
        self.config = config
        self.intrinsics = intrinsics
        self._axes = camera_axes(config.camera_pitch)
        x, y = config.cell_centers()
        u, v, in_front = self.project_points(x, y)
        u[~in_front] = -1e6  # remap treats them as outside the image
        v[~in_front] = -1e6
        self._map_u = u.astype(np.float32)
        self._map_v = v.astype(np.float32)

    def project_points(self, x: np.ndarray, y: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return pixel (u, v) of ground points (x, y) and whether each is in front."""
        k = self.intrinsics
        points = np.stack([x, y, np.full_like(x, -self.config.camera_height)], axis=-1)
        optical = points @ self._axes.T
        depth = optical[..., 2]
        in_front = depth > 1e-6
        safe = np.where(in_front, depth, 1.0)
        u = k.fx * optical[..., 0] / safe + k.cx  # OpenCV/ROS: integer = pixel centre
        v = k.fy * optical[..., 1] / safe + k.cy
        return u, v, in_front

    def ground_point(self, u: np.ndarray, v: np.ndarray
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ground (x, y) where the rays through pixels (u, v) meet it, and if they do."""
        k = self.intrinsics
        ray = np.stack([(np.asarray(u, float) - k.cx) / k.fx,
                        (np.asarray(v, float) - k.cy) / k.fy,
                        np.ones(np.shape(u))], axis=-1) @ self._axes  # in ground coordinates
        down = -ray[..., 2]
        hits = down > 1e-9
        scale = np.where(hits, self.config.camera_height / np.where(hits, down, 1.0), np.nan)
        return ray[..., 0] * scale, ray[..., 1] * scale, hits

    def project(self, mask: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Return the grid (int8 rows along y, columns along x) of a 0/255 drivable mask."""
        k = self.intrinsics
        if mask.shape[:2] != (k.height, k.width) or mask.dtype != np.uint8:
            raise InputError(f'drivable mask {mask.shape} {mask.dtype} does not match the '
                             f'{k.width}x{k.height} camera intrinsics', 'size_mismatch')
        sampled = cv2.remap(mask, self._map_u, self._map_v, cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=_OUTSIDE)
        grid = np.empty(sampled.shape, np.int8) if out is None else out
        grid[...] = OCCUPIED
        grid[sampled == 255] = FREE
        grid[sampled == _OUTSIDE] = UNKNOWN
        return grid

    def origin_in_camera(self) -> Tuple[Tuple[float, float, float],
                                        Tuple[float, float, float, float]]:
        """Return the pose of the grid's corner (cell 0, 0) in the optical frame: xyz, xyzw."""
        config = self.config
        corner = np.array([config.start, -config.width / 2, -config.camera_height])
        position = self._axes @ corner
        rotation = self._axes  # columns: the ground axes in optical coordinates
        return (tuple(float(v) for v in position), quaternion_from_matrix(rotation))
