"""Trace pieces that differ only in their times are folded into one row before insert."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from owlscope.ingestion.rows import TraceEvent, merge_trace_pieces, traces_table

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _piece(trace_id: str, offset_s: float, **fields) -> TraceEvent:
    return TraceEvent(project_id="p", id=trace_id, event_ts=T0 + timedelta(seconds=offset_s + 1),
                      timestamp=T0 + timedelta(seconds=offset_s), **fields)


def test_pieces_equal_but_for_their_times_fold_into_the_earliest_start_and_the_latest_event():
    a = _piece("t1", 5, user_id="u", tags=["x"], metadata='{"k":1}')
    b = _piece("t1", 1, user_id="u", tags=["x"], metadata='{"k":1}')
    c = _piece("t1", 9, user_id="u", tags=["x"], metadata='{"k":1}')
    before = [replace(p) for p in (a, b, c)]
    (folded,) = merge_trace_pieces([a, b, c])
    assert folded.timestamp == T0 + timedelta(seconds=1)
    assert folded.event_ts == T0 + timedelta(seconds=10)
    assert (folded.user_id, folded.tags, folded.metadata) == ("u", ["x"], '{"k":1}')
    assert [a, b, c] == before  # the pieces given are not changed


def test_a_piece_without_a_start_counts_its_event_time_as_its_start():
    a = _piece("t1", 5, name="n")
    b = replace(_piece("t1", 0, name="n"), timestamp=None)  # event at T0 + 1 s
    (folded,) = merge_trace_pieces([a, b])
    assert folded.timestamp == T0 + timedelta(seconds=1)
    assert folded.event_ts == T0 + timedelta(seconds=6)


def test_pieces_that_differ_in_any_field_or_trace_stay_apart_in_their_order():
    root = _piece("t1", 0, root_name="root", root_input='"q"', user_id="u")
    child = _piece("t1", 1, user_id="u")
    child2 = _piece("t1", 2, user_id="u")
    other_user = _piece("t1", 3, user_id="v")
    other_tags = _piece("t1", 4, user_id="u", tags=["y"])
    other_trace = _piece("t2", 5, user_id="u")
    out = merge_trace_pieces([root, child, other_user, child2, other_tags, other_trace])
    assert [(p.id, p.root_name, p.user_id, p.tags) for p in out] == [
        ("t1", "root", "u", []), ("t1", None, "u", []), ("t1", None, "v", []), ("t1", None, "u", ["y"]),
        ("t2", None, "u", [])]
    assert out[1].event_ts == child2.event_ts and out[1].timestamp == child.timestamp


def test_the_arrow_table_of_trace_pieces_holds_the_folded_rows():
    pieces = [_piece("t1", i, session_id="s") for i in range(4)] + [_piece("t1", 0, root_name="r")]
    table = traces_table(pieces)
    assert table.num_rows == 2
    assert table.column("session_id").to_pylist() == ["s", None]
    assert table.column("event_ts").to_pylist()[0] == T0 + timedelta(seconds=4)
