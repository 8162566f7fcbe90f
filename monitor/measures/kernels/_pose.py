"""Head pose angles from the facial transformation matrix."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def head_angles_deg(rot, out):
    """Z-Y-X decomposition R = Rz(roll)·Ry(yaw)·Rx(pitch) in OpenGL camera axes, re-signed so that
    yaw > 0: face turned toward the patient's left; pitch > 0: chin up; roll > 0: the patient's
    left eye higher than the right."""
    s = -rot[2, 0]
    if s > 1.0:
        s = 1.0
    elif s < -1.0:
        s = -1.0
    out[0] = np.degrees(np.arcsin(s))
    out[1] = -np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    out[2] = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))


@njit(cache=True, nogil=True)
def head_angles_deg_batch(rots, out):
    for i in range(rots.shape[0]):
        head_angles_deg(rots[i], out[i])
