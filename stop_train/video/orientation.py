"""Display orientation of decoded frames, as ffmpeg applies it (torch-free).

A video's display matrix (MP4/MOV `tkhd`, phone recordings) says how stored frames are shown. ffmpeg's CLI
autorotates (fftools `ffmpeg_filter.c`, `get_rotation` in `cmdutils.c`): the angle is
``-round(av_display_rotation_get(m))`` folded into [0, 360); about 90 gives ``transpose=clock`` (or
``cclock_flip`` when m[3] > 0, a mirrored matrix), 180 gives ``hflip`` if m[0] < 0 and ``vflip`` if m[4] < 0,
270 gives ``transpose=cclock`` (or ``clock_flip`` when m[3] < 0), 0 gives ``vflip`` if m[4] < 0, and any other
angle a ``rotate`` filter. This module reproduces the right-angle cases exactly on numpy arrays and refuses
other angles with a message (a rotated, letter-boxed picture is no input for a video model).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import StopError


class OrientationError(StopError, ValueError):
    """A display matrix this toolkit does not render (an angle that is not a multiple of 90 degrees)."""


@dataclass(frozen=True)
class Orientation:
    """What to do to a stored (H, W, C) frame: `transpose` ('' or one of ffmpeg's transpose directions),
    then `hflip` / `vflip`."""

    transpose: str = ""  # '', 'clock', 'cclock', 'clock_flip', 'cclock_flip'
    hflip: bool = False
    vflip: bool = False

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(H, W, C) stored -> displayed (a view when possible)."""
        if self.transpose == "clock":
            image = np.rot90(image, k=-1)
        elif self.transpose == "cclock":
            image = np.rot90(image, k=1)
        elif self.transpose == "cclock_flip":  # out[y, x] = in[x, y]
            image = image.transpose(1, 0, 2)
        elif self.transpose == "clock_flip":  # out[y, x] = in[W-1-x, H-1-y]
            image = image.transpose(1, 0, 2)[::-1, ::-1]
        if self.hflip:
            image = image[:, ::-1]
        if self.vflip:
            image = image[::-1]
        return np.ascontiguousarray(image)

    def display_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) shown for a stored frame of (height, width)."""
        return (width, height) if self.transpose else (height, width)


def rotation_degrees(matrix: tuple[int, ...]) -> float:
    """ffmpeg's `get_rotation`: the clockwise display angle in [0, 360) of a 3x3 16.16 display matrix."""
    m = [v / 65536.0 for v in matrix[:6]]
    scale0, scale1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if scale0 == 0.0 or scale1 == 0.0:
        return 0.0
    theta = float(round(math.degrees(math.atan2(m[1] / scale1, m[0] / scale0))))  # = -av_display_rotation_get
    return theta - 360.0 * math.floor(theta / 360.0 + 0.9 / 360.0)


def orientation_from_matrix(matrix: tuple[int, ...] | None) -> Orientation:
    """The Orientation ffmpeg's autorotation gives a display matrix (None: as stored).

    Raises OrientationError for angles that are not multiples of 90 degrees.
    """
    if matrix is None:
        return Orientation()
    theta = rotation_degrees(matrix)
    if abs(theta - 90) < 1.0:
        return Orientation("cclock_flip" if matrix[3] > 0 else "clock")
    if abs(theta - 180) < 1.0:
        return Orientation(hflip=matrix[0] < 0, vflip=matrix[4] < 0)
    if abs(theta - 270) < 1.0:
        return Orientation("clock_flip" if matrix[3] < 0 else "cclock")
    if abs(theta) > 1.0:
        raise OrientationError(
            f"display rotation of {theta:g} degrees is not supported (only multiples of 90); "
            "re-encode the video upright, e.g. ffmpeg -i IN -c:a copy OUT"
        )
    return Orientation(vflip=matrix[4] < 0)


def display_matrix(frame) -> tuple[int, ...] | None:
    """The display matrix of a decoded PyAV frame (nine int32), or None."""
    for side in frame.side_data:
        if getattr(side.type, "name", str(side.type)).endswith("DISPLAYMATRIX"):
            raw = bytes(side)
            if len(raw) >= 36:
                return struct.unpack("<9i", raw[:36])
    return None


def orientation_of(frame) -> Orientation:
    """The Orientation of a decoded PyAV frame (raises OrientationError, see `orientation_from_matrix`)."""
    return orientation_from_matrix(display_matrix(frame))
