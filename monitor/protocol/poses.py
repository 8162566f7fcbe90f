"""The standard facial-palsy photo set: eight poses, as clinics photograph them for Emotrics and
Auto-eFace (rest, brow raise, gentle and tight eye closure, smile, snarl, pucker, lower-lip
depression), each labelled in the series with a protocol step name where the 24-step protocol has
one (``monitor.protocol.steps``) and with the pose's own name where it has none (snarl, lower-lip
depression). A pose is found from a file name (``rest.jpg``, ``02_Smile.png``, ``brow-raise.jpeg``)
with ``pose_from_name``. Pure data; nothing here reads a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.protocol import steps as S

SNARL = "snarl"  # photo-set steps the 24-step protocol has no step for
LOWER_LIP_DEPRESSION = "lower_lip_depression"


@dataclass(frozen=True)
class Pose:
    name: str  # the photo-set name (file names and manifests use it)
    step: str  # the series' step label (a protocol step where one exists)
    title: str  # a few words for a list
    instruction: str  # what to do for the photo, in plain language


POSES: tuple[Pose, ...] = (
    Pose("rest", S.NEUTRAL, "Rest", "Relax your face and look straight into the camera."),
    Pose("brow_raise", S.RAISING_EYEBROWS, "Brow raise", "Raise your eyebrows as high as you can."),
    Pose("eyes_closed_gentle", S.EYES_CLOSED, "Gentle eye closure", "Close your eyes gently, as in sleep."),
    Pose("eyes_closed_tight", S.EYES_CLOSED_FIRMLY, "Tight eye closure",
         "Squeeze your eyes shut as tightly as you can."),
    Pose("smile", S.SHOWING_TEETH, "Smile", "Give your biggest smile, showing your teeth."),
    Pose("snarl", SNARL, "Snarl", "Wrinkle your nose and lift your upper lip, as if something smells bad."),
    Pose("pucker", S.WHISTLING, "Pucker", "Pucker your lips as if to whistle or kiss."),
    Pose("lower_lip_depression", LOWER_LIP_DEPRESSION, "Lower-lip depression",
         "Pull your lower lip down to show your lower teeth (say 'EEE')."),
)
POSE_NAMES = tuple(p.name for p in POSES)
REST = POSES[0]
_BY_KEY = {**{p.step: p for p in POSES}, **{p.name: p for p in POSES}}  # a pose by its name or its step's


def normalize(name: str) -> str:
    """Lower case, separators (space, dash, dot, underscore) folded to one underscore, a leading
    number (``02_``, ``2-``) dropped: ``"02 Brow-Raise"`` → ``"brow_raise"``."""
    key = re.sub(r"[\s\-_.]+", "_", name.strip().lower()).strip("_")
    return re.sub(r"^\d+_?", "", key)


def pose_from_name(name: str) -> Pose | None:
    """The pose a file name (without its suffix) or a manifest entry names; None when it names none.
    The protocol's step names are accepted too (``neutral`` is rest, ``showing_teeth`` is smile)."""
    return _BY_KEY.get(normalize(name))


def pose_for_step(step: str) -> Pose | None:
    """The pose whose frames carry this step label."""
    return next((p for p in POSES if p.step == step), None)
