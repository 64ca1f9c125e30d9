"""The department registry: built-in specs in their order, a deployment's extra folder
(DOUDI_DEPARTMENTS_DIR), and spec errors that name the file."""

from __future__ import annotations

import textwrap

import pytest

from sources import registry
from sources.registry import EXTRA_DIR_ENV, SpecError

VEHICLES = """\
source: vehicles
title: 车辆登记信息
order: 75
delivery: full_stock
key: registration_no
person:
  name: name
  id_number: id_number
columns:
  - {name: registration_no, type: key, required: true, not_null: true, headers: [登记编号]}
  - {name: name, type: name, required: true, headers: [姓名]}
  - {name: id_number, type: id_number, required: true, headers: [身份证号]}
  - {name: registration_date, type: date, required: true, headers: [登记日期]}
"""


@pytest.fixture
def extra_dir(tmp_path, monkeypatch):
    """A deployment's folder of extra specs, named by DOUDI_DEPARTMENTS_DIR; the registry's
    cache is cleared before and after, so no other test sees these departments."""
    folder = tmp_path / "departments"
    folder.mkdir()
    monkeypatch.setenv(EXTRA_DIR_ENV, str(folder))
    registry.all_sources.cache_clear()
    yield folder
    monkeypatch.delenv(EXTRA_DIR_ENV)
    registry.all_sources.cache_clear()


def write(folder, name: str, text: str):
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_built_in_departments_keep_their_order_and_linked_sources():
    assert [s.source for s in registry.all_sources()] == [
        "households", "members", "medical", "disability", "education", "death", "detention", "standards", "verifications"
    ]
    linked = registry.linked_sources()
    assert [s.source for s in linked] == ["medical", "disability", "education", "death", "detention"]
    assert {s.source: s.person.window for s in linked} == {
        "medical": "history", "disability": "quarter", "education": "quarter", "death": "delivered_so_far", "detention": "quarter"
    }
    assert not registry.source("verifications").key_unique and registry.source("members").key_unique


def test_an_extra_folder_adds_a_department_in_its_order(extra_dir):
    write(extra_dir, "vehicles.yaml", VEHICLES)
    names = [s.source for s in registry.all_sources()]
    assert names.index("vehicles") == names.index("detention") + 1  # order 75: between detention (70) and standards (80)
    spec = registry.source("vehicles")
    assert spec.person == registry.Person("name", "id_number", "quarter")  # a full stock's window by default
    assert [s.source for s in registry.linked_sources()][-1] == "vehicles"


def test_a_file_named_like_a_built_in_one_is_refused_naming_both(extra_dir):
    path = write(extra_dir, "death.yaml", VEHICLES.replace("source: vehicles", "source: death"))
    with pytest.raises(SpecError) as refused:
        registry.all_sources()
    assert str(path) in str(refused.value) and str(registry.SPEC_DIR / "death.yaml") in str(refused.value)


def test_a_missing_extra_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(EXTRA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SpecError, match="nowhere"):
        registry.spec_files()


@pytest.mark.parametrize(
    "change, message",
    [
        (("name: name\n  id_number", "name: registration_date\n  id_number"),
         "person: name 'registration_date' is not a declared column of type name"),
        (("delivery: full_stock", "delivery: accumulating"), "must say which copies are linked"),
        (("person:\n", "person:\n  window: history\n"), "window history is for accumulating deliveries"),
        (("delivery: full_stock", "delivery: roster"), "a roster is what records are linked to"),
        (("order: 75", "order: seventy"), "order must be a whole number"),
        (("order: 75\n", ""), "missing field 'order'"),
        (("source: vehicles", "source: cars"), "must be the file's name"),
        (("columns:", "columns: [\n"), "not valid YAML"),
    ],
)
def test_spec_errors_name_the_file(extra_dir, change, message):
    old, new = change
    assert old in VEHICLES
    path = write(extra_dir, "vehicles.yaml", VEHICLES.replace(old, new, 1))
    with pytest.raises(SpecError) as refused:
        registry.all_sources()
    assert str(path) in str(refused.value) and message in str(refused.value)


def test_two_departments_of_one_order_are_refused(extra_dir):
    write(extra_dir, "vehicles.yaml", VEHICLES.replace("order: 75", "order: 70"))
    with pytest.raises(SpecError, match="detention.yaml and vehicles.yaml: both have order 70"):
        registry.all_sources()


def test_a_history_window_needs_a_record_date(extra_dir):
    text = VEHICLES.replace("delivery: full_stock", "delivery: accumulating").replace("person:\n", "person:\n  window: history\n")
    path = write(extra_dir, "vehicles.yaml", text)
    with pytest.raises(SpecError, match="record_date") as refused:
        registry.all_sources()
    assert str(path) in str(refused.value)
    write(extra_dir, "vehicles.yaml", text.replace("key: registration_no", "key: registration_no\nrecord_date: registration_date"))
    registry.all_sources.cache_clear()
    assert registry.source("vehicles").person.window == "history"
