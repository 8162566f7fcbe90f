"""Names of the 24 steps of the MG video protocol and what each step's frames feed (DESIGN §1).

The protocol itself (durations, instructions, order) is data elsewhere; these names are the contract
between it, the series' ``step`` column and the per-step analyses. Gaze directions are the patient's
own (``gaze_left`` = looking toward the patient's left).
"""

NEUTRAL = "neutral"
EYES_CLOSED = "eyes_closed"
EYES_CLOSED_FIRMLY = "eyes_closed_firmly"
RIGHT_EYE_CLOSED = "right_eye_closed"
LEFT_EYE_CLOSED = "left_eye_closed"
EMOTIONS = ("anger", "fear", "happiness", "surprise", "disgust", "sadness")
SHOWING_TEETH = "showing_teeth"
RAISING_EYEBROWS = "raising_eyebrows"
MOUTH_OPEN = "mouth_open"
WHISTLING = "whistling"
TONGUE_PROTRUSION = "tongue_protrusion"
GAZE_DIRECTIONS = {  # unit direction in the head frame: x toward the patient's left, y up
    "gaze_left": (1, 0), "gaze_right": (-1, 0), "gaze_up": (0, 1), "gaze_down": (0, -1),
    "gaze_up_left": (1, 1), "gaze_up_right": (-1, 1), "gaze_down_left": (1, -1), "gaze_down_right": (-1, -1),
}
SUSTAINED_GAZE = ("gaze_left", "gaze_right")  # 30 s each: the fatigability steps

EXPRESSION_STEPS = (NEUTRAL, EYES_CLOSED, RIGHT_EYE_CLOSED, LEFT_EYE_CLOSED, EYES_CLOSED_FIRMLY, *EMOTIONS,
                    SHOWING_TEETH, RAISING_EYEBROWS, MOUTH_OPEN, WHISTLING, TONGUE_PROTRUSION)
ALL_STEPS = EXPRESSION_STEPS + tuple(GAZE_DIRECTIONS)
assert len(ALL_STEPS) == 24
