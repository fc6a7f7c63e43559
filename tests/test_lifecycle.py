"""The lifecycle module: every machine's table of moves, move by move, and the guard.

Each declared (state, action) pair moves a real row; every other pair is refused with a
sentence and changes nothing; a stale version loses the race; and no code may write a
state column except through ``lifecycle.move`` (the engine guard refuses it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from pipeline import lifecycle
from pipeline.errors import TransitionError
from pipeline.lifecycle import MACHINES, Machine
from pipeline.models import Draft, Push, Submission, Unit
from pipeline.store import Store, open_store

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("lifecycle") / "pipeline.db"
    opened = open_store(f"sqlite:///{path}")
    with opened.session() as session:
        session.execute(sa.insert(Unit).values(id=1, name="麓谷街道", level="street",
                                               created_at=NOW))
        session.execute(sa.insert(Push).values(id=1, account="a", local_date=date(2026, 6, 1),
                                               slot=1, state="done", channel="folder",
                                               started_at=NOW, note="", version=0))
    yield opened
    opened.close()


_counter = iter(range(1000, 100_000))


def _row(session: Session, machine: Machine, state: str) -> int:
    """A fresh row of ``machine`` in ``state``, inserted with Core (tests only: the ORM
    refuses rows born in a state that is not initial)."""
    n = next(_counter)
    common: dict[str, Any] = {"id": n, machine.column: state, machine.version: 0}
    if machine is lifecycle.DRAFT:
        session.execute(sa.insert(Submission).values(
            id=n, unit_id=1, activity_type="film", title="t", start_at=NOW, end_at=NOW,
            place="p", form="f", body="b", dedupe_key=f"k{n}", received_at=NOW))
        values = {**common, "submission_id": n, "unit_id": 1, "activity_type": "film",
                  "title": "t", "deadline": NOW, "created_at": NOW, "updated_at": NOW}
    elif machine is lifecycle.PUSH:
        values = {**common, "account": "a", "local_date": date(2026, 6, 1), "slot": n,
                  "channel": "folder", "started_at": NOW, "note": ""}
    elif machine is lifecycle.PUBLICATION:
        session.execute(sa.insert(Submission).values(
            id=n, unit_id=1, activity_type="film", title="t", start_at=NOW, end_at=NOW,
            place="p", form="f", body="b", dedupe_key=f"k{n}", received_at=NOW))
        session.execute(sa.insert(Draft).values(
            id=n, submission_id=n, unit_id=1, activity_type="film", title="t",
            status="publishing", deadline=NOW, created_at=NOW, updated_at=NOW))
        values = {**common, "draft_id": n, "push_id": 1, "position": 1, "error": ""}
    elif machine is lifecycle.WECHAT_JOB:
        session.execute(sa.insert(Push).values(id=n, account="j", local_date=date(2026, 6, 1),
                                               slot=n, state="running", channel="folder",
                                               started_at=NOW, note="", version=0))
        values = {**common, "push_id": n, "mode": "masssend", "created_at": NOW,
                  "updated_at": NOW}
    elif machine is lifecycle.FINDING:
        values = {**common, "draft_id": _row(session, lifecycle.DRAFT, "drafted"),
                  "kind": "typo", "rule": "list", "text": "t", "suggestion": "s",
                  "message": "m", "detail": "", "note": "", "actor": "", "created_at": NOW}
    else:
        values = {**common, "key": f"m{n}", "kind": "test", "recipients": "[]",
                  "subject": "s", "text_body": "t", "created_at": NOW,
                  "next_attempt_at": NOW}
    session.execute(sa.insert(machine.model).values(**values))
    return n


def _load(session: Session, machine: Machine, row_id: int) -> Any:
    row = session.get(machine.model, row_id)
    assert row is not None
    return row


def _pairs(declared: bool) -> list[tuple[str, str, str]]:
    out = []
    for machine in MACHINES:
        for state in sorted(machine.states()):
            for action in sorted(machine.actions()):
                if (machine.find(state, action) is not None) == declared:
                    out.append((machine.name, state, action))
    return out


BY_NAME = {m.name: m for m in MACHINES}


@pytest.mark.parametrize(("name", "state", "action"), _pairs(True))
def test_every_declared_move_works(store: Store, name: str, state: str, action: str) -> None:
    machine = BY_NAME[name]
    with store.session() as session:
        row_id = _row(session, machine, state)
    with store.session() as session:
        row = _load(session, machine, row_id)
        moved = lifecycle.move(session, machine, row, action, actor="tester", now=NOW,
                               note="n")
    expected = machine.find(state, action).target or state  # type: ignore[union-attr]
    with store.session() as session:
        row = _load(session, machine, row_id)
        assert getattr(row, machine.column) == expected == moved.to_state
        assert getattr(row, machine.version) == 1
        assert _history(session, machine, row_id) == [(action, state, expected)]


@pytest.mark.parametrize(("name", "state", "action"), _pairs(False))
def test_every_other_move_is_refused_and_changes_nothing(store: Store, name: str, state: str,
                                                         action: str) -> None:
    machine = BY_NAME[name]
    with store.session() as session:
        row_id = _row(session, machine, state)
    with store.session() as session:
        row = _load(session, machine, row_id)
        with pytest.raises(TransitionError) as refused:
            lifecycle.move(session, machine, row, action, actor="tester", now=NOW)
    assert f"'{state}'" in str(refused.value)
    assert refused.value.code in ("draft.illegal_move", "state.illegal_move")
    assert "当前状态为" in refused.value.text("zh_CN")
    assert not refused.value.lost_race
    with store.session() as session:
        row = _load(session, machine, row_id)
        assert getattr(row, machine.column) == state and getattr(row, machine.version) == 0
        assert _history(session, machine, row_id) == []


def _history(session: Session, machine: Machine, row_id: int) -> list[tuple[str, str, str]]:
    if machine is lifecycle.DRAFT:
        rows = session.execute(sa.text(
            "SELECT action, from_status, to_status FROM draftevent WHERE draft_id = :i "
            "ORDER BY id"), {"i": row_id}).all()
    else:
        rows = session.execute(sa.text(
            "SELECT action, from_state, to_state FROM stateevent WHERE machine = :m AND "
            "row_id = :i ORDER BY id"), {"m": machine.name, "i": row_id}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_stale_version_loses_the_race_and_changes_nothing(store: Store) -> None:
    machine = lifecycle.DRAFT
    with store.session() as session:
        row_id = _row(session, machine, "drafted")
    with store.session() as session:
        stale = _load(session, machine, row_id)
        session.expunge(stale)
    with store.session() as session:
        lifecycle.move(session, machine, _load(session, machine, row_id), "edit",
                       actor="first", now=NOW)
    with store.session() as session, pytest.raises(TransitionError) as lost:
        lifecycle.move(session, machine, stale, "reject", actor="second", now=NOW)
    assert lost.value.lost_race and "changed by someone else" in str(lost.value)
    with store.session() as session:
        assert _load(session, machine, row_id).status == "drafted"
        assert [h[0] for h in _history(session, machine, row_id)] == ["edit"]


def test_a_set_move_moves_only_rows_in_a_source_state(store: Store) -> None:
    machine = lifecycle.DRAFT
    with store.session() as session:
        ready = [_row(session, machine, "approved") for _ in range(3)]
        other = _row(session, machine, "drafted")
    with store.session() as session:
        moved = lifecycle.move_all(session, machine, [*ready, other], "claim", actor="push",
                                   now=NOW, notes={ready[0]: "position 1"})
    assert sorted(moved) == sorted(ready)
    with store.session() as session:
        assert {_load(session, machine, i).status for i in ready} == {"publishing"}
        assert _load(session, machine, other).status == "drafted"
        assert _history(session, machine, ready[1]) == [("claim", "approved", "publishing")]


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_no_state_is_written_outside_a_move(store: Store, machine: Machine) -> None:
    state = sorted(machine.initial)[0]
    with store.session() as session:
        row_id = _row(session, machine, state)
    table = str(machine.model.__tablename__)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match=r"outside lifecycle\.move"), store.session() as s:
        s.execute(sa.text(f'UPDATE "{table}" SET {machine.column} = :v WHERE id = :i'),
                  {"v": "x", "i": row_id})
    with pytest.raises(RuntimeError, match=r"outside lifecycle\.move"), store.session() as s:
        row = _load(s, machine, row_id)
        setattr(row, machine.column, "x")
        s.flush()
    with store.session() as session:  # other columns stay writable as before
        session.execute(sa.update(machine.model).where(
            machine.model.id == row_id).values(**{machine.version: 7}))  # type: ignore[attr-defined]


def test_rows_are_born_only_in_an_initial_state(store: Store) -> None:
    with pytest.raises(RuntimeError, match="may not be created in state"), \
            store.session() as session:
        session.add(Push(account="b", local_date=date(2026, 7, 1), state="failed",
                         started_at=NOW))
        session.flush()


def test_system_moves_between_two_states_are_unambiguous() -> None:
    # The WeChat job is driven by (expected, target) pairs: each must name one move.
    for machine in (lifecycle.WECHAT_JOB,):
        for state in machine.states():
            for target in machine.states():
                system = [m for (s, _), m in machine._index.items()
                          if s == state and (m.target or s) == target
                          and m.who is lifecycle.Who.SYSTEM]
                assert len(system) <= 1, (machine.name, state, target, system)


def test_only_the_lifecycle_module_names_a_state_column_in_a_write() -> None:
    """A code check beside the engine guard: no ``.values(status=…)``/``.values(state=…)``
    and no ``x.status = …``/``x.state = …`` outside pipeline/lifecycle.py."""
    offenders = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if path.name == "lifecycle.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "values":
                offenders += [f"{path.name}:{node.lineno}" for k in node.keywords
                              if k.arg in ("status", "state")]
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if isinstance(t, ast.Attribute) and t.attr in ("status", "state") \
                            and not (isinstance(t.value, ast.Name) and t.value.id == "self"):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
