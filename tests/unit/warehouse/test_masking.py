"""marts.warnings_masked keeps one list of two-character surnames for the warning's name
and for the names inside its evidence (the SQL spells the list twice, as literal patterns
DuckDB compiles once)."""

from __future__ import annotations

import re

from warehouse.models import model_sql


def test_the_name_and_the_evidence_names_keep_the_same_compound_surnames():
    sql = model_sql("marts/warnings_masked")
    name = re.search(r"regexp_extract\(w\.name, '\^\(([^)]*)\|\.\)'", sql).group(1)
    evidence = re.search(r'"\(name_as_written\|roster_name\)":"\(([^)]*)\|\[\^"\]\)', sql).group(1)
    assert name.split("|") == evidence.split("|")
    assert "欧阳" in name.split("|")
