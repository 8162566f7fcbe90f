"""Session summary from the per-frame series (pure computation; docs/measures.md defines it all)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from engines.base import BLENDSHAPE_NAMES
from monitor.measures.asymmetry import asymmetry_index, dynamic_asymmetry, static_asymmetry
from monitor.measures.compliance import Compliance, check_step, window_values
from monitor.measures.expression import blendshape_side_differences, expression_strength
from monitor.measures.face_model import SIDES
from monitor.measures.fatigue import FatigueOptions, fatigue_curve
from monitor.measures.gaze import gaze_excursions
from monitor.measures.palsy import eface, house_brackmann
from monitor.measures.ptosis import gaze_hold, ptosis_test
from monitor.measures.schema import ANGLE_COLUMNS, AREA_COLUMNS, EYE_STATUS_COLUMNS, LENGTH_COLUMNS
from monitor.protocol import steps as S

PAIRED = ("eye_aperture", "mrd1", "brow_height", "commissure_height")
SESSION = "session"  # the window name when the series has no protocol steps
STAT_COLUMNS = LENGTH_COLUMNS + AREA_COLUMNS + ANGLE_COLUMNS
MAX_BLINK_S = 1.0  # a closure of both eyes up to this long is a blink; longer is eyes closed
MIN_FATIGUE_S = 6.0  # a window shorter than baseline + end has no fatigue curve


def _stats(x: np.ndarray) -> dict | None:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    p5, p50, p95 = np.percentile(x, [5, 50, 95])
    return {"median": round(float(p50), 3), "p05": round(float(p5), 3), "p95": round(float(p95), 3), "n": int(x.size)}


def _col(table: pa.Table, name: str, dtype=float) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype)


def _medians(table: pa.Table, mask: np.ndarray) -> dict[str, float]:
    out = {}
    for c in STAT_COLUMNS:
        x = _col(table, c)[mask]
        x = x[np.isfinite(x)]
        out[c] = float(np.median(x)) if x.size else float("nan")
    return out


def _counts(values: np.ndarray) -> dict[str, int]:
    names, n = np.unique(values.astype(str), return_counts=True)
    return {str(k): int(v) for k, v in zip(names, n)}


def refused_counts(table: pa.Table, face: np.ndarray) -> dict[str, int]:
    """Frames with a face that a plausibility gate withheld, per reason (gate_status other than ok)."""
    if "gate_status" not in table.column_names:  # a series stored before the gates
        return {}
    status = np.array([v or "ok" for v in table.column("gate_status").to_pylist()], object)[face]
    return _counts(status[status != "ok"])


def count_blinks(t: np.ndarray, closed_l: np.ndarray, closed_r: np.ndarray, max_s: float = MAX_BLINK_S) -> int:
    """Runs of frames with both eyes closed lasting at most max_s."""
    both = closed_l & closed_r
    n = 0
    i = 0
    while i < both.size:
        if both[i]:
            j = i
            while j + 1 < both.size and both[j + 1]:
                j += 1
            if t[j] - t[i] <= max_s:
                n += 1
            i = j + 1
        else:
            i += 1
    return n


def _steps(table: pa.Table) -> np.ndarray:
    return np.array([s or "" for s in table.column("step").to_pylist()], object)


def windows(step: np.ndarray, face: np.ndarray, attempt: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Frame masks per protocol step (frames with a face); the whole series when there are none.
    With ``attempt`` (the app's step_attempt column, -1 where unset) a repeated or restarted step
    keeps only the frames of its last attempt."""
    names = [s for s in dict.fromkeys(step.tolist()) if s]
    if not names:
        return {SESSION: face.copy()}
    out = {}
    for s in names:
        m = face & (step == s)
        if attempt is not None and m.any():
            m &= attempt == attempt[step == s].max()
        out[s] = m
    return out


def fatigue_for_window(table: pa.Table, mask: np.ndarray) -> dict | None:
    t = _col(table, "t_s")[mask]
    if t.size < 2 or t[-1] - t[0] < MIN_FATIGUE_S:
        return None
    out = {}
    for s in SIDES:
        closed = _col(table, f"eye_closed_{s}", bool)[mask]
        out[s] = {m: fatigue_curve(t - t[0], _col(table, f"{m}_{s}_mm")[mask], closed).as_json(with_bins=True)
                  for m in ("eye_aperture", "mrd1")}
    return out


def fatigue_between(table: pa.Table, start_s: float | None = None, end_s: float | None = None) -> dict | None:
    """Fatigue curves over a chosen stretch [start_s, end_s] of a recorded series (frames with a
    face); None when that stretch is shorter than MIN_FATIGUE_S."""
    table = table.sort_by([("t_s", "ascending")])  # rows in time order, however they reached the store
    t = _col(table, "t_s")
    mask = _col(table, "face", bool) & (t >= (-np.inf if start_s is None else start_s)) \
        & (t <= (np.inf if end_s is None else end_s))
    return fatigue_for_window(table, mask)


@dataclass(frozen=True)
class StepSummary:
    """One protocol step's window (or the whole session when it has no steps)."""

    frames: int
    duration_s: float
    medians: dict[str, float] = field(default_factory=dict)  # paired lid/brow/mouth columns, mm
    expression: dict = field(default_factory=dict)  # expression_strength(): action units and emotions at p95
    fatigue: dict | None = None  # per side and measure: FatigueCurve.as_json(with_bins=True)
    compliance: Compliance | None = None  # whether the frames showed what the step asked (None: no step)

    @property
    def performed(self) -> bool | None:
        """False when the step was not performed (left out of every score); None when not checked."""
        return None if self.compliance is None else self.compliance.performed

    def fatigue_curve(self, side: str, measure: str = "eye_aperture") -> dict | None:
        return (self.fatigue or {}).get(side, {}).get(measure)

    def as_dict(self) -> dict:
        out = {"frames": self.frames, "duration_s": self.duration_s, "medians": self.medians,
               "expression": self.expression}
        if self.compliance is not None:
            out.update(self.compliance.as_dict())
        return out if self.fatigue is None else dict(out, fatigue=self.fatigue)

    @classmethod
    def from_dict(cls, d: dict) -> "StepSummary":
        return cls(int(d.get("frames", 0)), float(d.get("duration_s", 0.0)), dict(d.get("medians") or {}),
                   dict(d.get("expression") or {}), d.get("fatigue"),
                   Compliance.from_dict(d) if "performed" in d else None)


@dataclass(frozen=True)
class SessionSummary:
    """Session-level and per-step figures (docs/measures.md defines each). Stored in the session row
    as the JSON of ``as_dict()``; ``from_dict`` reads what older versions stored too."""

    face_found: bool
    message: str | None = None  # why there is nothing to summarise
    face_fraction: float | None = None
    frames_with_multiple_faces: int = 0
    measures: dict = field(default_factory=dict)  # series column → {median, p05, p95, n} or None
    eye_status: dict = field(default_factory=dict)  # side → {status: frames}
    refused: dict = field(default_factory=dict)  # plausibility gate reason → frames withheld (gate_status)
    blinks: dict = field(default_factory=dict)  # count, per_min
    asymmetry: dict = field(default_factory=dict)  # window, static, dynamic, index, blendshape differences
    steps: dict[str, StepSummary] = field(default_factory=dict)
    gaze: dict = field(default_factory=dict)
    palsy: dict | None = None  # eface_estimate, house_brackmann_estimate
    ptosis: dict | None = None  # the ptosis test (monitor.measures.ptosis.ptosis_test)
    gaze_hold: dict = field(default_factory=dict)  # lateral gaze step → monitor.measures.ptosis.gaze_hold
    neutral_medians: dict[str, float] = field(default_factory=dict)
    vs_baseline: dict | None = None  # baseline_session, difference
    cnn: dict | None = None  # the 3D-CNN's votes with its card (monitor.session.cnn)
    baseline_saved: bool = False

    def step(self, name: str) -> StepSummary | None:
        return self.steps.get(name)

    def measure_median(self, column: str) -> float | None:
        stats = self.measures.get(column)
        return None if not stats else stats.get("median")

    def as_dict(self) -> dict:
        out = {"face_found": self.face_found}
        if self.message is not None:
            out["message"] = self.message
        if self.face_fraction is None:
            return out
        out.update(face_fraction=self.face_fraction, frames_with_multiple_faces=self.frames_with_multiple_faces)
        if not self.face_found:
            return out
        out.update(measures=self.measures, eye_status=self.eye_status, refused=self.refused)
        if self.blinks:  # photos have no blink rate
            out["blinks"] = self.blinks
        out.update(asymmetry=self.asymmetry, steps={k: v.as_dict() for k, v in self.steps.items()}, gaze=self.gaze,
                   palsy=self.palsy)
        for key in ("ptosis", "gaze_hold", "neutral_medians", "vs_baseline", "cnn"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.baseline_saved:
            out["baseline_saved"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict | None) -> "SessionSummary":
        d = d or {}
        return cls(
            face_found=bool(d.get("face_found")), message=d.get("message"), face_fraction=d.get("face_fraction"),
            frames_with_multiple_faces=int(d.get("frames_with_multiple_faces") or 0),
            measures=dict(d.get("measures") or {}), eye_status=dict(d.get("eye_status") or {}),
            refused=dict(d.get("refused") or {}),
            blinks=dict(d.get("blinks") or {}), asymmetry=dict(d.get("asymmetry") or {}),
            steps={k: StepSummary.from_dict(v) for k, v in (d.get("steps") or {}).items()},
            gaze=dict(d.get("gaze") or {}), palsy=d.get("palsy"), ptosis=d.get("ptosis"),
            gaze_hold=dict(d.get("gaze_hold") or {}), neutral_medians=dict(d.get("neutral_medians") or {}),
            vs_baseline=d.get("vs_baseline"), cnn=d.get("cnn"), baseline_saved=bool(d.get("baseline_saved")))


NO_FRAMES = SessionSummary(False, "no frames were processed")


def summarize(table: pa.Table, baseline: dict | None = None, still: bool = False,
              sustained: tuple[str, ...] | None = None) -> SessionSummary:
    """Session-level and per-step figures. ``baseline`` is the person's stored neutral medians
    (calibration.baseline), compared with this session's neutral window when given. ``still``: the
    frames are photos (no time passes between them), so what needs time (blinks, fatigue) is absent.
    ``sustained``: the steps that get a fatigue curve (a protocol's ``sustained_steps``; by default
    S.SUSTAINED_STEPS). Each step is checked for compliance against the neutral window; a step not
    performed keeps its medians but is left out of the asymmetry, gaze, palsy and fatigue figures."""
    if table.num_rows == 0:
        return NO_FRAMES
    if "t_s" in table.column_names:  # rows in time order, however they reached the store
        table = table.sort_by([("t_s", "ascending")])
    face = _col(table, "face", bool)
    faces = _col(table, "faces")
    head = {"face_fraction": round(float(face.mean()), 4), "frames_with_multiple_faces": int((faces > 1).sum())}
    if not face.any():
        return SessionSummary(False, "no face was found in any frame", **head)
    t = _col(table, "t_s")
    step = _steps(table)
    attempt = np.nan_to_num(_col(table, "step_attempt"), nan=-1).astype(int) \
        if "step_attempt" in table.column_names else None
    wins = windows(step, face, attempt)
    closure_steps = [S.EYES_CLOSED, S.EYES_CLOSED_FIRMLY, S.LEFT_EYE_CLOSED, S.RIGHT_EYE_CLOSED]
    not_closing = face & ~np.isin(step, closure_steps)
    blinks = count_blinks(t[not_closing], _col(table, "eye_closed_left", bool)[not_closing],
                          _col(table, "eye_closed_right", bool)[not_closing])
    span_min = max((t[face][-1] - t[face][0]) / 60.0, 1e-9)
    bs = np.stack([_col(table, b) for b in BLENDSHAPE_NAMES], 1)
    per_step = {name: _medians(table, m) for name, m in wins.items() if m.any()}
    rest_name = S.NEUTRAL if S.NEUTRAL in per_step else SESSION if SESSION in per_step else None
    neutral = per_step.get(rest_name) if rest_name else None
    static = static_asymmetry(neutral) if neutral else {}
    sustained = S.SUSTAINED_STEPS if sustained is None else tuple(sustained)
    verdicts, noise = step_compliance(table, wins, bs, sustained)
    graded = {n: v for n, v in per_step.items() if n not in verdicts or verdicts[n].performed is not False}
    dynamic = dynamic_asymmetry(graded, neutral) if neutral else {}
    grades = eface(graded, noise, frozenset(per_step) - frozenset(graded))
    vs_baseline = None
    if baseline and neutral:
        vs_baseline = {
            "baseline_session": baseline.get("session_id"),
            "difference": {c: round(neutral[c] - v, 3) for c, v in baseline.get("medians", {}).items()
                           if c in neutral and np.isfinite(neutral[c]) and v is not None}}
    return SessionSummary(
        True, **head,
        measures={c: _stats(_col(table, c)[face]) for c in STAT_COLUMNS},
        eye_status={c.removeprefix("eye_status_"): _counts(np.array(table.column(c).to_pylist(), object)[face])
                    for c in EYE_STATUS_COLUMNS},
        refused=refused_counts(table, face),
        blinks={} if still else {"count": blinks, "per_min": round(blinks / span_min, 2)},
        asymmetry={"window": rest_name, "static": static, "dynamic": dynamic,
                   "index": asymmetry_index(static, dynamic),
                   "blendshape_left_minus_right_p95": blendshape_side_differences(bs[wins[rest_name]])
                   if rest_name else {}},
        steps={name: _step_summary(table, name, m, t, per_step[name], bs, still, verdicts.get(name),
                                   name in sustained) for name, m in wins.items() if m.any()},
        gaze=gaze_excursions(graded, graded.get(S.NEUTRAL)),
        palsy={"eface_estimate": grades, "house_brackmann_estimate": house_brackmann(grades)} if grades else None,
        ptosis=None if still else _ptosis(table, wins, verdicts),
        gaze_hold={} if still else _gaze_holds(table, wins, graded),
        neutral_medians={c: round(v, 4) for c, v in neutral.items() if np.isfinite(v)} if neutral else {},
        vs_baseline=vs_baseline)


def _step_summary(table: pa.Table, name: str, m: np.ndarray, t: np.ndarray, medians: dict, bs: np.ndarray,
                  still: bool = False, compliance: Compliance | None = None, sustained: bool = False) -> StepSummary:
    """One window's summary; a step not performed keeps its frames and medians but has no expression
    strength or fatigue curve (they would score what the person did not do)."""
    performed = compliance is None or compliance.performed is not False
    fat = fatigue_for_window(table, m) if (sustained or name == SESSION) and performed and not still else None
    return StepSummary(int(m.sum()), round(float(t[m][-1] - t[m][0]), 3),
                       {f"{p}_{s}_mm": round(v, 3) for p in PAIRED for s in SIDES
                        if np.isfinite(v := medians.get(f"{p}_{s}_mm", np.nan))},
                       expression_strength(bs[m], None if name == SESSION else name) if performed else {},
                       fat or None, compliance)


def _window_columns(table: pa.Table, m: np.ndarray, bs: np.ndarray) -> dict[str, np.ndarray]:
    cols = {c: _col(table, c)[m] for c in STAT_COLUMNS}
    cols.update({b: bs[m, i] for i, b in enumerate(BLENDSHAPE_NAMES)})
    cols.update({f"eye_closed_{s}": _col(table, f"eye_closed_{s}", bool)[m] for s in SIDES})
    return cols


def step_compliance(table: pa.Table, wins: dict[str, np.ndarray], bs: np.ndarray,
                    sustained: tuple[str, ...] = ()) -> tuple[dict[str, Compliance], dict]:
    """Each protocol step's compliance against the neutral window, and that window's noise (robust SD
    per column; empty without a neutral step). A sustained step is judged on its first seconds (the
    fatigue baseline): what fades later is the finding, not a step left undone."""
    neutral, noise = None, {}
    if S.NEUTRAL in wins and wins[S.NEUTRAL].any():
        neutral, noise = window_values(_window_columns(table, wins[S.NEUTRAL], bs))
    t = _col(table, "t_s")
    out = {}
    for name, m in wins.items():
        if name in sustained and m.any():
            m = m & (t <= t[m][0] + FatigueOptions().baseline_s)
        if name != SESSION and m.any():
            values, _ = window_values(_window_columns(table, m, bs))
            out[name] = check_step(name, values, neutral, noise)
    return out, noise


def _performed(verdicts: dict[str, Compliance], name: str) -> bool | None:
    return verdicts[name].performed if name in verdicts else None


def _ptosis(table: pa.Table, wins: dict[str, np.ndarray], verdicts: dict[str, Compliance]) -> dict | None:
    """The ptosis test from its upgaze, rest and re-test windows; None without a performed upgaze step
    long enough for a fatigue curve."""
    m = wins.get(S.PTOSIS_UPGAZE)
    if m is None or not m.any() or _performed(verdicts, S.PTOSIS_UPGAZE) is False:
        return None
    t = _col(table, "t_s")[m]
    if t[-1] - t[0] < MIN_FATIGUE_S:
        return None
    mrd1 = {s: _col(table, f"mrd1_{s}_mm") for s in SIDES}
    closed = {s: _col(table, f"eye_closed_{s}", bool) for s in SIDES}
    retest = None
    r = wins.get(S.PTOSIS_RETEST)
    if r is not None and r.any() and _performed(verdicts, S.PTOSIS_RETEST) is not False:
        retest = {s: np.where(closed[s][r], np.nan, mrd1[s][r]) for s in SIDES}
    return ptosis_test(t, {s: v[m] for s, v in mrd1.items()}, {s: c[m] for s, c in closed.items()}, retest,
                       _performed(verdicts, S.PTOSIS_REST))


def _gaze_holds(table: pa.Table, wins: dict[str, np.ndarray], graded: dict[str, dict]) -> dict:
    """How long each performed lateral-gaze step held its gaze (monitor.measures.ptosis.gaze_hold)."""
    neutral = graded.get(S.NEUTRAL)
    out = {}
    for name in S.SUSTAINED_GAZE:
        if name not in graded or neutral is None:
            continue
        m = wins[name]
        ux = S.GAZE_DIRECTIONS[name][0]
        per_eye = np.stack([(_col(table, f"gaze_horizontal_{s}_mm")[m] - neutral.get(f"gaze_horizontal_{s}_mm", np.nan))
                            * ux for s in SIDES])
        seen = np.isfinite(per_eye)
        along = np.where(seen.any(0), np.where(seen, per_eye, 0.0).sum(0) / np.maximum(seen.sum(0), 1), np.nan)
        t = _col(table, "t_s")[m]
        if t.size >= 2 and t[-1] - t[0] >= MIN_FATIGUE_S and (held := gaze_hold(t, along)) is not None:
            out[name] = held
    return out
