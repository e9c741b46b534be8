"""The test servers work with the stock clients: clickhouse-connect (HTTP) on chDB, obstore on moto S3."""

from __future__ import annotations

import gzip
import http.client
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import clickhouse_connect
import obstore
import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from obstore.store import S3Store

from tests.fixtures.servers import (
    S3_ACCESS_KEY,
    S3_REGION,
    S3_SECRET_KEY,
    create_s3_bucket,
    start_chdb_http_server,
    start_moto_s3,
    stop_process,
)

TS = pa.timestamp("ms", tz="UTC")


@pytest.fixture(scope="module")
def ch_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port = start_chdb_http_server(tmp_path_factory.mktemp("chdb-http"))
    try:
        yield port
    finally:
        stop_process(proc)


@pytest.fixture()
def ch(ch_port: int) -> Iterator[clickhouse_connect.driver.Client]:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, compress=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture()
def db(ch: clickhouse_connect.driver.Client) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    ch.command(f"CREATE DATABASE IF NOT EXISTS {name}")
    try:
        yield name
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {name}")


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


# ------------------------------------------------------------------------------------------- chDB


def test_handshake_ping_and_server_info(ch: clickhouse_connect.driver.Client, ch_port: int) -> None:
    assert ch.ping()
    assert ch.server_version.split(".")[0].isdigit()
    assert ch.command("SELECT timezone()") == "UTC"
    with urllib.request.urlopen(f"http://127.0.0.1:{ch_port}/ping", timeout=5) as resp:
        assert resp.read() == b"Ok.\n"
    # a GET with the query in the URL, answered in the default format with ClickHouse's headers
    with urllib.request.urlopen(
        f"http://127.0.0.1:{ch_port}/?query=SELECT%201%2B{{x:UInt8}}&param_x=2", timeout=5
    ) as resp:
        assert resp.read() == b"3\n"
        assert resp.headers["X-ClickHouse-Format"] == "TabSeparated"
        assert resp.headers["X-ClickHouse-Timezone"] == "UTC"
        assert resp.headers["X-ClickHouse-Query-Id"]
        assert "read_rows" in resp.headers["X-ClickHouse-Summary"]


def test_map_datetime64_nullable_arrow_insert_and_parameters(
    ch: clickhouse_connect.driver.Client, db: str
) -> None:
    ch.command(
        f"""CREATE TABLE IF NOT EXISTS {db}.obs (
            project_id String, id String, ts DateTime64(3, 'UTC'),
            usage Map(String, UInt64), cost Nullable(Float64), model Nullable(String)
        ) ENGINE = MergeTree ORDER BY (project_id, id)"""
    )
    t0 = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    table = pa.table(
        {
            "project_id": ["p1", "p1", "p2"],
            "id": ["a", "b", "c"],
            "ts": pa.array([t0, t0 + timedelta(seconds=1), t0], TS),
            "usage": pa.array(
                [[("input", 10), ("output", 5)], [], [("input", 1)]], pa.map_(pa.string(), pa.uint64())
            ),
            "cost": [0.5, None, 1.0],
            "model": ["gpt-4o", None, "o3"],
        }
    )
    summary = ch.insert_arrow(f"{db}.obs", table)
    assert summary.written_rows == 3
    # row insert (Native) into the same table
    ch.insert(
        f"{db}.obs",
        [["p1", "d", t0, {"total": 7}, None, "x"]],
        column_names=["project_id", "id", "ts", "usage", "cost", "model"],
    )

    rows = ch.query(
        f"SELECT id, ts, usage, cost, model FROM {db}.obs WHERE project_id = {{p:String}} "
        "AND ts >= {since:DateTime64(3)} ORDER BY id",
        parameters={"p": "p1", "since": t0},
    ).result_rows
    assert [r[0] for r in rows] == ["a", "b", "d"]
    a, b, d = rows
    assert _naive(a[1]) == _naive(t0)  # milliseconds kept
    assert a[2] == {"input": 10, "output": 5} and a[3] == 0.5 and a[4] == "gpt-4o"
    assert b[2] == {} and b[3] is None and b[4] is None
    assert d[2] == {"total": 7}

    # parameter values that need escaping, and an Array parameter
    tricky = "it's a \\ test\t'"
    assert ch.query("SELECT {s:String}", parameters={"s": tricky}).result_rows == [(tricky,)]
    assert ch.query(
        f"SELECT count() FROM {db}.obs WHERE id IN {{ids:Array(String)}}", parameters={"ids": ["a", "c"]}
    ).result_rows == [(2,)]

    # Arrow out, too
    arrow = ch.query_arrow(f"SELECT id, usage FROM {db}.obs ORDER BY id")
    assert arrow.column("id").to_pylist() == ["a", "b", "c", "d"]


def test_commands_alter_delete_and_settings(
    ch: clickhouse_connect.driver.Client, ch_port: int, db: str
) -> None:
    ch.command(f"CREATE TABLE {db}.t (id String, v UInt32) ENGINE = MergeTree ORDER BY id")
    ch.insert(f"{db}.t", [["a", 1], ["b", 2], ["c", 3]], column_names=["id", "v"])
    ch.command(f"ALTER TABLE {db}.t ADD COLUMN IF NOT EXISTS note String DEFAULT 'n'")
    ch.command(
        f"ALTER TABLE {db}.t DELETE WHERE id = {{id:String}}",
        parameters={"id": "a"},
        settings={"mutations_sync": 2},
    )
    ch.command(f"DELETE FROM {db}.t WHERE v = 2")  # lightweight delete
    assert ch.query(f"SELECT id, v, note FROM {db}.t ORDER BY id").result_rows == [("c", 3, "n")]
    assert ch.command(f"SELECT count() FROM {db}.t") == 1
    # a per-query setting applies to that query only
    assert ch.command("SELECT getSetting('max_block_size')", settings={"max_block_size": 1234}) == 1234
    assert ch.command("SELECT getSetting('max_block_size')") != 1234
    # the database parameter sets the current database
    other = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, compress=False, database=db)
    try:
        assert other.command("SELECT currentDatabase()") == db
        assert other.query("SELECT count() FROM t").result_rows == [(1,)]
        assert ch.command("SELECT currentDatabase()") == "default"
    finally:
        other.close()


def test_raw_http_insert_forms(ch_port: int, db: str) -> None:
    """Inline data, VALUES, gzip and chunked bodies, as other ClickHouse HTTP clients send them."""

    def post(url: str, body: bytes | list[bytes], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", ch_port, timeout=30)
        try:
            if isinstance(body, list):  # chunked transfer encoding
                conn.putrequest("POST", url)
                for k, v in (headers or {}).items():
                    conn.putheader(k, v)
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for part in body:
                    conn.send(b"%x\r\n%s\r\n" % (len(part), part))
                conn.send(b"0\r\n\r\n")
            else:
                conn.request("POST", url, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def q(sql: str) -> str:
        return f"/?database={db}&query={urllib.parse.quote(sql)}"

    assert post(q("CREATE TABLE t (a UInt32, s String) ENGINE = MergeTree ORDER BY a"), b"")[0] == 200
    assert (
        post(f"/?database={db}", b'INSERT INTO t FORMAT JSONEachRow\n{"a":1,"s":"x"}\n{"a":2,"s":"y"}\n')[0]
        == 200
    )
    assert post(q("INSERT INTO t VALUES"), b"(3,'z'),(4,'w')")[0] == 200
    assert (
        post(q("INSERT INTO t FORMAT CSV"), gzip.compress(b"5,v\n6,u\n"), {"Content-Encoding": "gzip"})[0]
        == 200
    )
    assert post(q("INSERT INTO t FORMAT TSV"), [b"7\tq\n", b"8\tr\n9\ts\n"])[0] == 200
    status, body = post(q("INSERT INTO t FORMAT CSV"), b"not-a-number,x\n")
    assert status == 500 and body.startswith(b"Code: 27. DB::Exception:")
    assert post(q("SELECT count(), sum(a) FROM t FORMAT CSV"), b"") == (200, b"9,45\n")


def test_errors_are_clickhouse_exceptions(ch: clickhouse_connect.driver.Client) -> None:
    with pytest.raises(DatabaseError) as err:
        ch.query("SELECT * FROM no_such_db.no_such_table")
    assert "Code: 81" in str(err.value) or "Code: 60" in str(err.value)
    with pytest.raises(DatabaseError, match="Code: 62"):
        ch.command("SELEKT 1")
    assert ch.command("SELECT 1") == 1  # the connection is still usable


def test_argmaxif_merge_through_null_table_and_materialized_view(
    ch: clickhouse_connect.driver.Client, db: str
) -> None:
    """Pieces of one record, arriving in any order, merge in the engine (DESIGN 2.4)."""
    ch.command(
        f"""CREATE TABLE {db}.observation_events (
            project_id String, id String, event_ts DateTime64(3, 'UTC'),
            name Nullable(String), model Nullable(String), usage_details Map(String, UInt64),
            tags Array(String)
        ) ENGINE = Null"""
    )
    ch.command(
        f"""CREATE TABLE {db}.observations (
            project_id String, id String,
            name AggregateFunction(argMaxIf, Nullable(String), DateTime64(3, 'UTC'), UInt8),
            model AggregateFunction(argMaxIf, Nullable(String), DateTime64(3, 'UTC'), UInt8),
            usage_details AggregateFunction(argMaxIf, Map(String, UInt64), DateTime64(3, 'UTC'), UInt8),
            tags AggregateFunction(groupUniqArrayArray, Array(String)),
            last_event_ts SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
        ) ENGINE = AggregatingMergeTree ORDER BY (project_id, id)"""
    )
    ch.command(
        f"""CREATE MATERIALIZED VIEW {db}.observations_mv TO {db}.observations AS
        SELECT project_id, id,
            argMaxIfState(name, event_ts, name IS NOT NULL) AS name,
            argMaxIfState(model, event_ts, model IS NOT NULL) AS model,
            argMaxIfState(usage_details, event_ts, length(usage_details) > 0) AS usage_details,
            groupUniqArrayArrayState(tags) AS tags,
            max(event_ts) AS last_event_ts
        FROM {db}.observation_events GROUP BY project_id, id"""
    )
    schema = pa.schema(
        [
            ("project_id", pa.string()),
            ("id", pa.string()),
            ("event_ts", TS),
            ("name", pa.string()),
            ("model", pa.string()),
            ("usage_details", pa.map_(pa.string(), pa.uint64())),
            ("tags", pa.list_(pa.string())),
        ]
    )
    t = datetime(2025, 6, 1, tzinfo=UTC)

    def events(*rows: tuple) -> pa.Table:
        return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)

    # the update arrives before the create; a later rename arrives in a second insert
    ch.insert_arrow(
        f"{db}.observation_events",
        events(
            ("p1", "o1", t + timedelta(seconds=2), None, "gpt-4o", [("input", 10), ("output", 3)], ["b"]),
            ("p1", "o1", t, "llm-call", "gpt-3.5-turbo", [], ["a"]),
            ("p1", "o2", t, "other", None, [], []),
            ("p2", "o1", t, "another project", None, [], []),
        ),
    )
    ch.insert_arrow(
        f"{db}.observation_events",
        events(
            ("p1", "o1", t + timedelta(seconds=5), "renamed", None, [], ["a", "c"]),
        ),
    )
    assert ch.command(f"SELECT count() FROM {db}.observation_events") == 0  # Null engine keeps nothing

    query = f"""
        SELECT id, argMaxIfMerge(name) AS name, argMaxIfMerge(model) AS model,
               argMaxIfMerge(usage_details) AS usage_details,
               arraySort(groupUniqArrayArrayMerge(tags)) AS tags, max(last_event_ts) AS last_event_ts
        FROM {db}.observations WHERE project_id = {{project_id:String}}
        GROUP BY id ORDER BY id"""
    rows = ch.query(query, parameters={"project_id": "p1"}).result_rows
    assert len(rows) == 2
    o1, o2 = rows
    assert o1[:5] == ("o1", "renamed", "gpt-4o", {"input": 10, "output": 3}, ["a", "b", "c"])
    assert _naive(o1[5]) == _naive(t + timedelta(seconds=5))
    assert o2[:5] == ("o2", "other", None, {}, [])
    # two inserts: two parts, merged at query time; OPTIMIZE FINAL merges them on disk the same way
    ch.command(f"OPTIMIZE TABLE {db}.observations FINAL")
    assert ch.query(query, parameters={"project_id": "p1"}).result_rows == rows


def test_concurrent_clients(ch_port: int, db: str) -> None:
    setup = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, compress=False)
    setup.command(f"CREATE TABLE {db}.c (worker UInt8, n UInt32) ENGINE = MergeTree ORDER BY (worker, n)")
    setup.close()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            client = clickhouse_connect.get_client(
                host="127.0.0.1", port=ch_port, compress=False, database=db
            )
            for i in range(10):
                client.insert("c", [[worker, i * 10 + j] for j in range(10)], column_names=["worker", "n"])
                assert client.query(
                    "SELECT count() FROM c WHERE worker = {w:UInt8}", parameters={"w": worker}
                ).result_rows == [((i + 1) * 10,)]
            client.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    check = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, compress=False)
    assert check.command(f"SELECT count() FROM {db}.c") == 400
    check.close()


# ------------------------------------------------------------------------------------------ moto S3


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, endpoint = start_moto_s3(tmp_path_factory.mktemp("moto"))
    try:
        yield endpoint
    finally:
        stop_process(proc)


def _store(endpoint: str, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=endpoint,
        region=S3_REGION,
        access_key_id=S3_ACCESS_KEY,
        secret_access_key=S3_SECRET_KEY,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )


def test_obstore_s3_put_get_list_delete(s3_endpoint: str) -> None:
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    create_s3_bucket(s3_endpoint, bucket)
    store = _store(s3_endpoint, bucket)

    obstore.put(store, "raw/p1/2025/a.json.gz", b"\x1f\x8b first")
    obstore.put(store, "raw/p1/2025/b.json.gz", b"second")
    obstore.put(store, "media/x.png", b"\x89PNG")

    assert obstore.get(store, "raw/p1/2025/a.json.gz").bytes().to_bytes() == b"\x1f\x8b first"
    listed = sorted(meta["path"] for batch in obstore.list(store, prefix="raw/p1") for meta in batch)
    assert listed == ["raw/p1/2025/a.json.gz", "raw/p1/2025/b.json.gz"]
    assert obstore.head(store, "media/x.png")["size"] == 4

    obstore.delete(store, "raw/p1/2025/a.json.gz")
    with pytest.raises(FileNotFoundError):
        obstore.get(store, "raw/p1/2025/a.json.gz")
    remaining = sorted(meta["path"] for batch in obstore.list(store) for meta in batch)
    assert remaining == ["media/x.png", "raw/p1/2025/b.json.gz"]


def test_obstore_presigned_put_and_get(s3_endpoint: str) -> None:
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    create_s3_bucket(s3_endpoint, bucket)
    store = _store(s3_endpoint, bucket)
    put_url = obstore.sign(store, "PUT", "media/upload.bin", timedelta(minutes=5))
    # a non-form content type: moto stores an empty body for urllib's default form type
    req = urllib.request.Request(
        put_url, data=b"payload", method="PUT", headers={"Content-Type": "application/octet-stream"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    get_url = obstore.sign(store, "GET", "media/upload.bin", timedelta(minutes=5))
    with urllib.request.urlopen(get_url, timeout=10) as resp:
        assert resp.read() == b"payload"
