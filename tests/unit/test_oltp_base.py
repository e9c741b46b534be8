import re
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy.dialects import postgresql, sqlite

from owlscope.storage.oltp.base import ExactDecimal, UTCDateTime, new_id


def test_new_id_is_cuid_like_unique_and_time_ordered() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"c[0-9a-z]{24}", i) for i in ids)
    first = new_id()
    time.sleep(0.002)
    assert new_id()[:10] > first[:10]


def test_utc_datetime_binds_utc() -> None:
    t = UTCDateTime()
    local = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert t.process_bind_param(local, sqlite.dialect()) == datetime(2025, 1, 1, 10)
    assert t.process_bind_param(local, postgresql.dialect()) == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert t.process_bind_param(datetime(2025, 1, 1), sqlite.dialect()) == datetime(2025, 1, 1)
    assert t.process_result_value(datetime(2025, 1, 1), sqlite.dialect()) == datetime(2025, 1, 1, tzinfo=UTC)
    assert t.process_bind_param(None, sqlite.dialect()) is None


def test_exact_decimal_keeps_every_digit_on_sqlite() -> None:
    t = ExactDecimal()
    assert t.process_bind_param(Decimal("1.25E-7"), sqlite.dialect()) == "0.000000125"
    assert t.process_bind_param(2.5e-06, sqlite.dialect()) == "0.0000025"
    assert t.process_result_value("0.000000125", sqlite.dialect()) == Decimal("1.25E-7")
    padded = Decimal("0.000002500000000000000000000000")
    assert str(t.process_result_value(padded, postgresql.dialect())) == "0.0000025"
    assert str(t.process_result_value(Decimal("100.000"), postgresql.dialect())) == "100"
