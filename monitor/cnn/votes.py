"""From clip outputs to per-step decisions and a session-level majority vote (as in the MG paper).

A clip belongs to a protocol step when every frame it spans carries that step (and the same attempt)
in the session's series; clips across a transition, or across frames the protocol did not count, are
left out of the step decisions. A step's decision is its clips' mean probability against the threshold;
the session's decision is the majority of its steps' decisions (a tie is undecided). A session without
protocol steps votes over its clips. Pure: tables and lists in, a dict out.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.5


def clip_steps(frames: np.ndarray, labels: np.ndarray, outputs: list[dict]) -> list[str | None]:
    """The step each clip lies wholly inside (None when it crosses a transition or unlabelled frames).

    frames: the series' frame ids (increasing); labels: per frame, "step#attempt" or "" for none.
    """
    out = []
    for o in outputs:
        lo = np.searchsorted(frames, o["first_frame"], "left")
        hi = np.searchsorted(frames, o["last_frame"], "right")
        span = labels[lo:hi]
        if len(span) == 0 or span[0] == "" or np.any(span != span[0]):
            out.append(None)
        else:
            out.append(str(span[0]).split("#")[0])
    return out


def _decide(ps: list[float], threshold: float) -> int:
    return int(float(np.mean(ps)) >= threshold)


def _majority(decisions: list[int]) -> int | None:
    ones = sum(decisions)
    zeros = len(decisions) - ones
    return None if ones == zeros else int(ones > zeros)


def vote(frames, steps, attempts, outputs: list[dict], classes: tuple[str, str], threshold: float = THRESHOLD) -> dict:
    """Per-step clip decisions and the session's majority vote. ``steps``/``attempts`` may be None."""
    scored = [o for o in outputs if o.get("p") is not None]
    result = {"threshold": threshold, "classes": list(classes), "clips": len(scored), "steps": {},
              "decision": None, "votes": [0, 0], "level": "steps"}
    if not scored:
        return result
    frames = np.asarray(frames, np.int64)
    order = np.argsort(frames, kind="stable")
    frames = frames[order]
    if steps is not None and any(steps):
        att = attempts if attempts is not None else [None] * len(steps)
        labels = np.array([f"{s}#{a}" if s else "" for s, a in zip(steps, att)], dtype=object)[order]
        owners = clip_steps(frames, labels, scored)
    else:
        owners = [None] * len(scored)
    by_step: dict[str, list[float]] = {}
    for o, step in zip(scored, owners):
        if step is not None:
            by_step.setdefault(step, []).append(o["p"])
    if by_step:
        for step, ps in by_step.items():
            d = _decide(ps, threshold)
            result["steps"][step] = {"clips": len(ps), "mean_p": round(float(np.mean(ps)), 4), "decision": classes[d]}
        decisions = [_decide(ps, threshold) for ps in by_step.values()]
    else:
        result["level"] = "clips"
        decisions = [int(o["p"] >= threshold) for o in scored]
    result["votes"] = [len(decisions) - sum(decisions), sum(decisions)]
    winner = _majority(decisions)
    result["decision"] = None if winner is None else classes[winner]
    return result
