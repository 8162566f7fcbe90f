"""The per-frame series columns, defined once: name, unit, type, a short label and a definition.

Everything that names a series column reads it from here: the measures (which columns they fill),
the store (the Parquet schema and its field metadata), the exports (units and definitions beside
the rows), the app and report labels, and the "Columns" table of docs/measures.md (a test checks
that the table there is ``markdown_table()``). Sides are anatomical: ``left`` is the patient's left.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.base import BLENDSHAPE_NAMES
from monitor.measures.face_model import SIDES
from monitor.measures.kernels.api import ANGLE_OUTPUTS, AREA_OUTPUTS, MEASURE_NAMES


@dataclass(frozen=True)
class Column:
    name: str
    unit: str  # as shown to people: "mm", "°", "mm²", "s", "0–1", … ("–" for none)
    dtype: str  # Arrow type of the stored column: float32, float64, int16, int32, int64, bool, string
    label: str  # a few words for plots and tables: "eye opening, left"
    description: str  # the definition (docs/measures.md)
    group: str  # the row of docs/measures.md it is listed in (paired sides share one)

    @property
    def titled(self) -> str:
        """The label with its unit, for axes and table headers: "eye opening, left (mm)"."""
        return self.label if self.unit in ("–", "text", "bool", "") else f"{self.label} ({self.unit})"


_DESCRIPTIONS = {
    # refined from the image (monitor/measures/kernels/_eyelid.py, _mouth.py)
    "eye_aperture": ("eye opening", "palpebral fissure height at the pupil, image-refined (above)"),
    "mrd1": ("MRD1", "margin-reflex distance 1: upper lid margin above the image-refined iris centre"),
    "mrd2": ("MRD2", "margin-reflex distance 2: lower lid margin below the image-refined iris centre"),
    "commissure_height": (
        "mouth corner below the eye line",
        "how far the mouth corner lies below the line through the inner eye corners (362, 133), with the "
        "corner's height refined from the image (see \"Mouth corners\" below): the perpendicular distance in the "
        "image (tilt-corrected along the canthal line), divided by the vertical foreshortening `f`; a drooping "
        "corner has a larger value. The landmark depth was too unsteady for this vertical gap in the head frame"),
    # from the landmarks alone (monitor/measures/kernels/_measures.py)
    "eye_aperture_raw": (
        "eye opening (landmarks)",
        "the landmark-only fissure: upper-lid contour (362-398-384-385-386-387-388-466-263 / "
        "133-173-157-158-159-160-161-246-33) minus lower-lid contour (362-382-381-380-374-373-390-249-263 / "
        "133-155-154-153-145-144-163-7-33) at the pupil, in the head frame"),
    "mrd1_raw": ("MRD1 (landmarks)", "the landmark-only MRD1: upper-lid contour minus the landmark iris centre"),
    "brow_height": ("brow height", "brow contour (336-296-334-293-300 / 107-66-105-63-70) above the iris centre"),
    "commissure_height_raw": ("mouth corner below the eye line (landmarks)",
                              "the same from the landmark corner (291 / 61) alone"),
    "intercanthal": ("intercanthal distance", "3-D distance between the inner eye corners 362 and 133"),
    "iris_diameter": ("iris diameter", "this frame's horizontal iris width on the current scale (≈ 11.7 by "
                                       "construction; a check on the scale)"),
    "commissure_excursion": ("mouth corner excursion",
                             "after Emotrics: distance in the head frame's x–y plane from the lower lip's midline "
                             "point (17) to the mouth corner (291 / 61)"),
    "smile_angle": ("smile angle", "angle above the horizontal (head frame) of the line from the lower lip's midline "
                                   "point (17) to the mouth corner; larger when the corner lifts"),
    "dental_show": ("dental show", "area inside each half of the inner lip contour "
                                   "(13-312-311-310-415-308-324-318-402-317-14 / 13-82-81-80-191-78-95-88-178-87-14), "
                                   "head frame: the opening in which teeth show"),
    "gaze_horizontal": ("gaze, horizontal", "iris centre minus the midpoint of its eye's corners, head frame, + "
                                            "toward the patient's left"),
    "gaze_vertical": ("gaze, vertical", "the same, vertical, + up"),
}
_REFINED = ("eye_aperture", "mrd1", "mrd2", "commissure_height")
# landmark-kernel outputs that the image refinement supersedes keep their landmark value as *_raw_*
_RAW = ("eye_aperture", "mrd1", "commissure_height")


def _unit_of(kernel_name: str) -> tuple[str, str]:
    """(column suffix, unit) of a frame_measures output."""
    if kernel_name in ANGLE_OUTPUTS:
        return "deg", "°"
    if kernel_name in AREA_OUTPUTS:
        return "mm2", "mm²"
    return "mm", "mm"


def _sided(stem: str, suffix: str, unit: str, dtype: str = "float32") -> list[Column]:
    label, text = _DESCRIPTIONS[stem]
    group = f"`{stem}_left_{suffix}`, `_right_{suffix}`" if suffix else f"`{stem}_left`, `_right`"
    return [Column(f"{stem}_{side}_{suffix}" if suffix else f"{stem}_{side}", unit, dtype, f"{label}, {side}", text,
                   group) for side in SIDES]


def _one(name: str, unit: str, dtype: str, label: str, text: str) -> Column:
    return Column(name, unit, dtype, label, text, f"`{name}`")


def _landmark_columns() -> list[Column]:
    out, seen = [], set()
    for name in MEASURE_NAMES:
        stem, side = (name.rsplit("_", 1) + [""])[:2] if name.endswith(SIDES) else (name, "")
        suffix, unit = _unit_of(name)
        if side:
            stem = f"{stem}_raw" if stem in _RAW else stem
            if stem not in seen:
                seen.add(stem)
                out += _sided(stem, suffix, unit)
        else:
            label, text = _DESCRIPTIONS[stem]
            out.append(_one(f"{stem}_{suffix}", unit, "float32", label, text))
    return out


def _columns() -> tuple[Column, ...]:
    refined = [c for stem in _REFINED for c in _sided(stem, "mm", "mm")]
    landmark = _landmark_columns()
    lengths = [c for c in landmark if c.unit == "mm"]
    areas = [c for c in landmark if c.unit == "mm²"]
    angles = [c for c in landmark if c.unit == "°"]
    pose = [_one("yaw_deg", "°", "float32", "yaw", "> 0: face turned toward the patient's left"),
            _one("pitch_deg", "°", "float32", "pitch", "> 0: chin up"),
            _one("roll_deg", "°", "float32", "roll", "> 0: the patient's left eye higher than the right")]
    confidence = [Column(f"lid_confidence_{s}", "0–1", "float32", f"lid confidence, {s}",
                         "confidence of the refined eyelid values", "`lid_confidence_left`, `_right`") for s in SIDES]
    scale = [_one("mm_per_px", "mm/px", "float32", "scale", "the scale used for this frame")]
    flags = ([Column(f"eye_closed_{s}", "bool", "bool", f"eye closed, {s}", "the eye is closed (`eyeBlink<Side>` ≥ 0.5)",
                     "`eye_closed_left`, `_right`") for s in SIDES]
             + [Column(f"commissure_seam_{s}", "–", "bool", f"lip seam found, {s}",
                       "true where the lip seam beside that corner was found and refined the height; false where the "
                       "lips are apart there (an open mouth, teeth) or the seam is too faint, and the height is the "
                       "landmark value", "`commissure_seam_left`, `_right`") for s in SIDES]
             + [_one("lips_apart", "bool", "bool", "lips apart",
                     "the inner lips are apart at the midline (gap > 0.06 mouth widths, about 3 mm): the lip seam is "
                     "not sought and both commissure heights are the landmark values (see Plausibility gates)")])
    status = [Column(f"eye_status_{s}", "text", "string", f"eye status, {s}",
                     "`ok` or why the refined eyelid values are missing (see Eyelids)", "`eye_status_left`, `_right`")
              for s in SIDES]
    status.append(_one("gate_status", "text", "string", "plausibility gate",
                       "`ok`, or why every measure of the frame is withheld: `iris_not_dark`, `ipd_implausible`, "
                       "`intercanthal_implausible` (the mesh does not sit on a face), `pose` (turned or tilted beyond "
                       "the gate); `no_face` without a face (see Plausibility gates)"))
    head = [
        _one("frame", "–", "int64", "frame", "frame id from the capture thread (0, 1, …)"),
        _one("t_s", "s", "float64", "time", "media time from the start of the session"),
        _one("face", "bool", "bool", "face found", "a face was found; when false every measure is null"),
        _one("faces", "count", "int16", "faces", "faces found; the largest (by landmark bounding box) is measured; "
                                                 "> 1 flags the frame"),
        _one("step", "–", "string", "protocol step", "protocol step name: in the app, only on frames that count "
                                                      "toward the step (quality held); empty otherwise"),
        _one("step_attempt", "count", "int16", "step attempt",
             "the app's attempt number of that step (a repeat or a restart adds one); analyses use each step's last "
             "attempt; null outside the app"),
        _one("quality", "text", "string", "quality problems",
             "the app's failed quality checks for the frame, comma-separated (`turned`, `too_dark`, …; docs/app.md); "
             "empty when good; null outside the app"),
    ]
    tail = [
        Column("image_width", "px", "int32", "image width", "size of the analysed frame", "`image_width`, `image_height`"),
        Column("image_height", "px", "int32", "image height", "size of the analysed frame",
               "`image_width`, `image_height`"),
        _one("t_capture_ns", "ns", "int64", "capture time", "CLOCK_MONOTONIC when the frame was read"),
        _one("latency_ms", "ms", "float32", "latency", "capture → result available to the client"),
    ]
    blend = [Column(b, "0–1", "float32", b, "MediaPipe's names and scores (`eyeBlinkLeft`, `mouthSmileRight`, …; "
                    "their Left/Right are the patient's sides)", "52 blendshape columns") for b in BLENDSHAPE_NAMES]
    return tuple(head + refined + lengths + areas + pose + angles + confidence + scale + flags + status + tail + blend)


COLUMNS: tuple[Column, ...] = _columns()
BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
LANDMARKS_COLUMN = Column("landmarks_px", "px", "list<float32>[1434]", "landmarks",
                          "the 478×3 landmarks, flattened (null without a face)", "`landmarks_px`")

# the measures' own columns, by kind
REFINED_COLUMNS = tuple(f"{m}_{s}_mm" for m in _REFINED for s in SIDES)
LENGTH_COLUMNS = REFINED_COLUMNS + tuple(c.name for c in _landmark_columns() if c.unit == "mm")
AREA_COLUMNS = tuple(c.name for c in COLUMNS if c.unit == "mm²")
ANGLE_COLUMNS = tuple(c.name for c in COLUMNS if c.unit == "°")
CONFIDENCE_COLUMNS = tuple(f"lid_confidence_{s}" for s in SIDES)
FLOAT_COLUMNS = LENGTH_COLUMNS + AREA_COLUMNS + ANGLE_COLUMNS + CONFIDENCE_COLUMNS + ("mm_per_px",)
BOOL_COLUMNS = (tuple(f"eye_closed_{s}" for s in SIDES) + tuple(f"commissure_seam_{s}" for s in SIDES)
                + ("lips_apart",))
EYE_STATUS_COLUMNS = tuple(f"eye_status_{s}" for s in SIDES)
STATUS_COLUMNS = EYE_STATUS_COLUMNS + ("gate_status",)
# the landmark-only value of each frame_measures output, in MEASURE_NAMES order
LANDMARK_COLUMNS = tuple(
    f"{n.rsplit('_', 1)[0]}_raw_{n.rsplit('_', 1)[1]}_mm" if n.rsplit("_", 1)[0] in _RAW and n.endswith(SIDES)
    else f"{n}_{_unit_of(n)[0]}" for n in MEASURE_NAMES)


def pair_label(stem: str) -> str:
    """The label of a per-side measure without its side: pair_label("eye_aperture") == "eye opening"."""
    return _DESCRIPTIONS[stem][0]


def label(name: str, with_unit: bool = True) -> str:
    """A column's label ("eye opening, left (mm)"); the name itself for a column not in the schema."""
    c = BY_NAME.get(name)
    return name if c is None else (c.titled if with_unit else c.label)


def markdown_table() -> str:
    """The "Columns" table of docs/measures.md: one row per column, paired sides on one row."""
    rows, seen = ["| column | unit | definition |", "|---|---|---|"], set()
    for c in (*COLUMNS, LANDMARKS_COLUMN):
        if c.group in seen:
            continue
        seen.add(c.group)
        unit = {"°": "°", "mm²": "mm²"}.get(c.unit, c.unit)
        rows.append(f"| {c.group} | {unit} | {c.description} |")
    return "\n".join(rows)
