"""The series columns are defined once (monitor/measures/schema.py): the store, the measures and the
documentation must all agree with it."""

from pathlib import Path

import pytest

from monitor.measures import schema
from monitor.measures.frame import empty_measures
from monitor.store.series import SCHEMA

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_columns_table_is_the_schema():
    text = (ROOT / "docs" / "measures.md").read_text(encoding="utf-8")
    assert schema.markdown_table() in text, "docs/measures.md's Columns table differs from schema.markdown_table()"


def test_the_stored_series_has_exactly_the_schema_columns_with_units():
    assert SCHEMA.names == [c.name for c in schema.COLUMNS] + ["landmarks_px"]
    for c in schema.COLUMNS:
        meta = SCHEMA.field(c.name).metadata
        assert meta[b"unit"].decode() == c.unit and meta[b"description"].decode() == c.description


def test_every_value_the_measures_produce_is_a_schema_column():
    produced = set(empty_measures())
    unknown = produced - set(schema.BY_NAME)
    assert not unknown, f"compute_measures fills columns the schema does not define: {sorted(unknown)}"
    # and every measure column of the schema is filled by the measures (none is left for nobody to write)
    measure_columns = set(schema.FLOAT_COLUMNS + schema.BOOL_COLUMNS + schema.STATUS_COLUMNS)
    assert measure_columns == produced


@pytest.mark.parametrize("name, text", [("eye_aperture_left_mm", "eye opening, left (mm)"),
                                        ("smile_angle_right_deg", "smile angle, right (°)"),
                                        ("dental_show_left_mm2", "dental show, left (mm²)"),
                                        ("eye_status_left", "eye status, left")])
def test_labels_carry_their_units(name, text):
    assert schema.label(name) == text


def test_units_follow_the_name_suffix():
    for c in schema.COLUMNS:
        want = {"_mm": "mm", "_deg": "°", "_mm2": "mm²", "_ms": "ms", "_ns": "ns", "_s": "s"}
        for suffix, unit in want.items():
            if c.name.endswith(suffix):
                assert c.unit == unit, f"{c.name} ends in {suffix} but its unit is {c.unit}"
