"""MediaPipe Face Mesh indices used by the measures (DESIGN §2). Sides are anatomical: LEFT is the
patient's left (image right in an unmirrored frame). Contours run from the inner to the outer end."""

import numpy as np

# eye corners (inner, outer)
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263
RIGHT_EYE_INNER, RIGHT_EYE_OUTER = 133, 33
# lid midpoints
LEFT_UPPER_LID, RIGHT_UPPER_LID = 386, 159
LEFT_LOWER_LID, RIGHT_LOWER_LID = 374, 145
# iris centres and rings (horizontal pair first)
LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER = 473, 468
LEFT_IRIS_RING = (474, 475, 476, 477)
RIGHT_IRIS_RING = (469, 470, 471, 472)
# mouth corners; lip midline points (outer upper, outer lower, inner upper, inner lower)
LEFT_MOUTH_CORNER, RIGHT_MOUTH_CORNER = 291, 61
UPPER_LIP_MID, LOWER_LIP_MID, UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID = 0, 17, 13, 14

LEFT_UPPER_LID_CONTOUR = np.array([362, 398, 384, 385, 386, 387, 388, 466, 263], np.int64)
LEFT_LOWER_LID_CONTOUR = np.array([362, 382, 381, 380, 374, 373, 390, 249, 263], np.int64)
RIGHT_UPPER_LID_CONTOUR = np.array([133, 173, 157, 158, 159, 160, 161, 246, 33], np.int64)
RIGHT_LOWER_LID_CONTOUR = np.array([133, 155, 154, 153, 145, 144, 163, 7, 33], np.int64)
LEFT_BROW_CONTOUR = np.array([336, 296, 334, 293, 300], np.int64)
RIGHT_BROW_CONTOUR = np.array([107, 66, 105, 63, 70], np.int64)

# each half of the inner lip contour as a closed polygon: upper midpoint → corner → lower midpoint
LEFT_INNER_LIP = np.array([13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14], np.int64)
RIGHT_INNER_LIP = np.array([13, 82, 81, 80, 191, 78, 95, 88, 178, 87, 14], np.int64)

N_LANDMARKS = 478
