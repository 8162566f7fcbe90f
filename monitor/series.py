"""The per-frame series table (DESIGN §2): column names, Arrow schema, and table building."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engines.base import BLENDSHAPE_NAMES

from .measures import BOOL_COLUMNS, FLOAT_COLUMNS, STATUS_COLUMNS

N_LANDMARK_VALUES = 478 * 3

SCALAR_FIELDS = (
    [pa.field("frame", pa.int64()), pa.field("t_s", pa.float64()), pa.field("face", pa.bool_()),
     pa.field("faces", pa.int16()), pa.field("step", pa.string()),
     # set by the app's protocol run: the step's attempt number, and "" or the failed quality checks
     pa.field("step_attempt", pa.int16()), pa.field("quality", pa.string())]
    + [pa.field(c, pa.float32()) for c in FLOAT_COLUMNS]
    + [pa.field(c, pa.bool_()) for c in BOOL_COLUMNS] + [pa.field(c, pa.string()) for c in STATUS_COLUMNS]
    + [pa.field("image_width", pa.int32()), pa.field("image_height", pa.int32()),
       pa.field("t_capture_ns", pa.int64()), pa.field("latency_ms", pa.float32())]
    + [pa.field(b, pa.float32()) for b in BLENDSHAPE_NAMES]
)
SCHEMA = pa.schema(SCALAR_FIELDS + [pa.field("landmarks_px", pa.list_(pa.float32(), N_LANDMARK_VALUES))])
SCALAR_COLUMNS = tuple(f.name for f in SCALAR_FIELDS)


def build_table(rows: list[dict], landmarks: list[np.ndarray | None]) -> pa.Table:
    """Rows of scalar columns (missing → null) plus each frame's (478, 3) landmarks or None."""
    columns = {}
    for f in SCALAR_FIELDS:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_floating(f.type):
            arr = np.array([np.nan if v is None else v for v in values], np.float32)
            columns[f.name] = pa.array(arr, f.type, mask=np.isnan(arr))
        else:
            columns[f.name] = pa.array(values, f.type)
    flat = np.zeros((len(landmarks), N_LANDMARK_VALUES), np.float32)
    valid = np.zeros(len(landmarks), bool)
    for i, lm in enumerate(landmarks):
        if lm is not None:
            flat[i] = lm.reshape(-1)
            valid[i] = True
    lm_arr = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), N_LANDMARK_VALUES, mask=pa.array(~valid))
    columns["landmarks_px"] = lm_arr
    return pa.table(columns, schema=SCHEMA)
