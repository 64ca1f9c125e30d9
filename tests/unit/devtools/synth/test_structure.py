"""The generator's modules import one another without a circle, and the same seed writes the
same inbox byte for byte (benchmarks and before/after comparisons rest on that)."""

from __future__ import annotations

import ast
import filecmp
from pathlib import Path

import pytest

SYNTH = Path(__file__).resolve().parents[4] / "devtools" / "synth"


def _synth_imports(path: Path) -> set[str]:
    """The devtools.synth modules a module imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("devtools.synth."):
            found.add(node.module.removeprefix("devtools.synth."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("devtools.synth.") for a in node.names if a.name.startswith("devtools.synth.")}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                return path[path.index(imported):] + [imported] if imported in path else [module, imported]
            if imported not in state and (found := visit(imported, path + [imported])):
                return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module, [module])):
            return found
    return None


def test_no_import_circle_in_the_generator():
    graph = {p.stem: _synth_imports(p) for p in SYNTH.glob("*.py") if p.stem != "__init__"}
    assert graph["writer"] and graph["extracts"]  # the walk sees imports at all
    assert _cycle(graph) is None, " → ".join(_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert _cycle({"extracts": {"hazards"}, "hazards": {"writer"}, "writer": {"extracts"}}) == ["extracts", "hazards", "writer", "extracts"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _differing(a: Path, b: Path) -> list[str]:
    compared = filecmp.dircmp(a, b)
    out = [str(a / n) for n in compared.left_only + compared.right_only + compared.funny_files]
    out += [str(a / n) for n in filecmp.cmpfiles(a, b, compared.common_files, shallow=False)[1]]
    for sub in compared.common_dirs:
        out += _differing(a / sub, b / sub)
    return out


@pytest.mark.timeout(120)
def test_same_seed_same_files(tmp_path):
    from devtools.synth.generate import generate
    from pipelines.quarters import quarter_range

    for name in ("one", "two"):
        generate(tmp_path / name, quarter_range("2025Q1:2025Q1"), households=300, seed=7)
    assert len(list((tmp_path / "one").rglob("*.csv"))) > 10
    assert _differing(tmp_path / "one", tmp_path / "two") == []
