"""Fingerprints of mapped rows and the plan of what a run writes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.sync.fingerprint import ChangeKind, canonical_json, fingerprint, plan_changes
from bot.sync.mapping import inactive_row
from bot.sync.tables import CHART_OF_ACCOUNTS

CONNECTOR = "6a0c1f38-3a55-4c7f-8d7c-0f5f5b0c1a11"


def test_stable_across_key_order_and_numeric_types() -> None:
    a = {"xdc_name": "Sales", "xdc_effectiverate": 15.0, "xdc_sortorder": 1}
    b = {"xdc_sortorder": 1, "xdc_effectiverate": Decimal("15.0000"), "xdc_name": "Sales"}
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 64


def test_any_value_change_changes_the_hash() -> None:
    base = {"xdc_name": "Sales", "xdc_code": "200", "xdc_flag": False, "xdc_rate": 12.5}
    variants = [
        {**base, "xdc_name": "Sales "},
        {**base, "xdc_code": None},
        {**base, "xdc_flag": True},
        {**base, "xdc_rate": 12.25},
        {**base, "xdc_extra": None},
    ]
    hashes = {fingerprint(v) for v in variants}
    assert len(hashes) == len(variants)
    assert fingerprint(base) not in hashes


def test_the_hash_does_not_contain_the_values() -> None:
    row = {"xdc_name": "Secret Ledger"}
    assert "Secret" not in fingerprint(row)
    assert canonical_json(row) == '{"xdc_name":"Secret Ledger"}'


def test_unhashable_values_are_refused() -> None:
    with pytest.raises(TypeError):
        fingerprint({"x": object()})


def _inactive(key: str) -> dict[str, object]:
    return inactive_row(CHART_OF_ACCOUNTS, CONNECTOR, key)


def test_plan_creates_updates_and_leaves_alone() -> None:
    rows = {"a": {"n": "A"}, "b": {"n": "B2"}, "c": {"n": "C"}}
    previous = {"a": fingerprint({"n": "A"}), "b": fingerprint({"n": "B"})}
    plan = plan_changes(rows, previous, complete=False, inactive=_inactive)
    assert plan.unchanged == 1
    assert [(c.key, c.kind) for c in plan.changes] == [("b", ChangeKind.UPDATE), ("c", ChangeKind.CREATE)]
    assert plan.changes[0].fingerprint == fingerprint({"n": "B2"})


def test_plan_deactivates_missing_keys_only_on_a_complete_list_and_only_once() -> None:
    previous = {"a": fingerprint({"n": "A"}), "gone": fingerprint({"n": "G"})}
    rows = {"a": {"n": "A"}}
    incremental = plan_changes(rows, previous, complete=False, inactive=_inactive)
    assert incremental.changes == []
    full = plan_changes(rows, previous, complete=True, inactive=_inactive)
    assert [(c.key, c.kind) for c in full.changes] == [("gone", ChangeKind.DEACTIVATE)]
    assert full.changes[0].row == _inactive("gone")
    # Once the inactive row landed, its hash is what is stored: nothing more to do.
    after = {**previous, "gone": full.changes[0].fingerprint}
    assert plan_changes(rows, after, complete=True, inactive=_inactive).changes == []


def test_a_record_that_comes_back_is_updated() -> None:
    previous = {"back": fingerprint(_inactive("back"))}
    plan = plan_changes({"back": {"n": "B"}}, previous, complete=True, inactive=_inactive)
    assert [(c.key, c.kind) for c in plan.changes] == [("back", ChangeKind.UPDATE)]
