"""The access log's writer (`telemetry._log_writer`) on its own: lines are queued, not
written, on the caller's path; `flush()` writes them all, each thread's in its order; the
writer thread writes them within its interval, ends when idle and starts again; a full
queue drops and counts; a failing sink or a bad record does not stop it; bad settings are
refused naming the value. No sleeps: conditions are waited for with a timeout."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshclient.policy import AccessLogSettings
from meshclient.telemetry import access_log
from meshclient.telemetry._log_writer import BATCH, LineWriter
from tests.servers.helpers import wait_until


def render(records: Sequence[Any]) -> str:
    return "".join(f"{json.dumps(r)}\n" for r in records)


class Sink:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls = 0

    def __call__(self, text: str) -> None:
        self.calls += 1
        self.text.append(text)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in "".join(self.text).splitlines()]


def test_the_caller_queues_and_flush_writes_in_order(tmp_path: Path) -> None:
    log = access_log.AccessLog(AccessLogSettings(destination=str(tmp_path / "a.log"),
                                                 flush_interval=3600.0))
    request = httpx.Request("GET", "http://svc/x?token=t")
    for status in (200, 404):
        entry = log.outbound(request)
        assert entry is not None
        entry.closed(httpx.Response(status, request=request), None)
    assert not (tmp_path / "a.log").read_text()  # queued, not written on the caller's path
    log.flush()
    got = [json.loads(line) for line in (tmp_path / "a.log").read_text().splitlines()]
    assert [g["response_code"] for g in got] == [200, 404]
    assert got[0]["path"] == "/x?token=REDACTED" and got[0]["upstream_cluster"] is None


def test_every_line_arrives_and_each_thread_keeps_its_order() -> None:
    sink = Sink()
    writer = LineWriter(render, sink, name="t", flush_interval=0.05)
    threads, per_thread = 4, 500

    def put(t: int) -> None:
        for i in range(per_thread):
            writer.put([t, i])

    workers = [threading.Thread(target=put, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    writer.flush()
    got = sink.lines()
    assert len(got) == threads * per_thread and writer.dropped == 0
    for t in range(threads):
        assert [i for who, i in got if who == t] == list(range(per_thread))
    assert sink.calls <= len(got) // 2  # written in batches, not line by line


def test_the_writer_thread_writes_ends_when_idle_and_starts_again() -> None:
    sink = Sink()
    writer = LineWriter(render, sink, name="t", flush_interval=0.02)
    writer.put("one")
    wait_until(lambda: sink.lines() == ["one"], what="the writer wrote the first line")
    wait_until(lambda: not writer._running, what="the idle writer ended")
    writer.put("two")
    wait_until(lambda: sink.lines() == ["one", "two"], what="a new writer wrote the next")


def test_a_full_batch_wakes_the_writer_early() -> None:
    sink = Sink()
    writer = LineWriter(render, sink, name="t", flush_interval=3600.0)
    for i in range(BATCH):
        writer.put(i)
    wait_until(lambda: len(sink.lines()) == BATCH, what="a full batch written at once")


def test_a_full_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink()
    writer = LineWriter(render, sink, name="full.log", flush_interval=3600.0, buffer=10)
    for i in range(25):
        writer.put(i)
    assert writer.dropped == 15 and writer.queued == 10
    with caplog.at_level(logging.WARNING, "meshclient.telemetry"):
        writer.flush()
    assert sink.lines() == list(range(10))  # the first ten kept; later ones dropped
    assert "full.log: 15 lines dropped" in caplog.text


def test_access_log_counts_its_drops(tmp_path: Path) -> None:
    log = access_log.AccessLog(AccessLogSettings(destination=str(tmp_path / "a.log"),
                                                 flush_interval=3600.0, buffer=2))
    for _ in range(5):
        log.write({"direction": "inbound"})
    assert log.dropped == 3
    log.flush()
    assert len((tmp_path / "a.log").read_text().splitlines()) == 2


def test_sink_and_record_errors_do_not_stop_the_writer(
        caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink()
    failures = iter([OSError("disk full")])

    def flaky(text: str) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        sink(text)

    def strict(records: Sequence[Any]) -> str:
        if "bad" in records:
            raise ValueError("cannot format")
        return render(records)

    writer = LineWriter(strict, flaky, name="err.log", flush_interval=3600.0)
    with caplog.at_level(logging.WARNING, "meshclient.telemetry"):
        writer.put("lost to the full disk")
        writer.flush()
        writer.put("bad")
        writer.flush()
        writer.put("kept")
        writer.flush()
    assert sink.lines() == ["kept"]
    assert "err.log: disk full" in caplog.text and "formatting 1 lines failed" in caplog.text


@pytest.mark.parametrize(("field", "value"), [
    ("flush_interval", 0.0), ("flush_interval", -1.0), ("flush_interval", float("nan")),
    ("flush_interval", 7200.0), ("buffer", 0)])
def test_bad_settings_name_the_field_and_value(field: str, value: float) -> None:
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=f"{field} must be .*{value!r}"):
        LineWriter(render, Sink(), name="t", **kwargs)
