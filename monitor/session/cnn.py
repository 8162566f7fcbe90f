"""The session-level 3D-CNN result: per-step decisions and the vote, with the model card's figures."""

from __future__ import annotations

from monitor.cnn.card import CLASS_NAMES, ModelCard
from monitor.cnn.votes import vote


def cnn_summary(table, outputs: list[dict], cnn_info: dict | None) -> dict | None:
    """The session's 3D-CNN result: per-step decisions and the majority vote, with the model card's
    validation figures; for an untrained benchmark model, only its rate."""
    if not cnn_info:
        return None
    stats = cnn_info.get("stats") or {}
    card = cnn_info.get("card")
    base = {"arch": cnn_info["arch"], "task": cnn_info["task"], "mode": cnn_info["mode"],
            "stride": cnn_info["stride"], "backend": cnn_info["backend"], "stats": stats}
    if card is None:
        return dict(base, benchmark=True, clips=len(outputs))

    cols = table.column_names if table is not None else []
    frames = table.column("frame").to_pylist() if "frame" in cols else []
    steps = table.column("step").to_pylist() if "step" in cols else None
    attempts = table.column("step_attempt").to_pylist() if "step_attempt" in cols else None
    result = vote(frames, steps, attempts, outputs, CLASS_NAMES[card["task"]])
    model_card = ModelCard(**card)
    return dict(base, **result, model=model_card.summary_line(), validation=card.get("validation", {}),
                synthetic=model_card.synthetic, card_created=card.get("created"))
