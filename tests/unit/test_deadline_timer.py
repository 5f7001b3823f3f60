"""The shared deadline timer: armed watches fire once their deadline passes, disarmed ones
never do, and a socket is shut down only for an armed watch."""

from __future__ import annotations

import socket
import threading

import httpx

from meshclient.errors import DeadlineExceeded
from meshclient.transport._deadline import watch_attempt
from tests.servers.helpers import until

REQUEST = httpx.Request("GET", "http://users/a")


def test_armed_watches_fire_and_disarmed_ones_never_do() -> None:
    armed = [watch_attempt(REQUEST, 20_000_000, None, "users") for _ in range(20)]
    disarmed = [watch_attempt(REQUEST, 20_000_000, None, "users") for _ in range(20)]
    later = watch_attempt(REQUEST, 60_000_000_000, None, "users")  # a minute away
    for watch in disarmed:
        watch.disarm()
    assert until(lambda: all(w.fired for w in armed), 5.0)
    assert not any(w.fired for w in disarmed)
    assert not later.fired
    later.disarm()


def test_a_deadline_sooner_than_the_pending_ones_wakes_the_timer() -> None:
    far = watch_attempt(REQUEST, 30_000_000_000, None, "users")
    near = watch_attempt(REQUEST, 10_000_000, None, "users")
    assert until(lambda: near.fired, 5.0) and not far.fired
    far.disarm()


def test_a_fired_watch_shuts_the_response_stream_down_and_names_the_deadline() -> None:
    left, right = socket.socketpair()
    try:
        class Stream:
            def get_extra_info(self, name: str) -> object:
                return left if name == "socket" else None

        watch = watch_attempt(REQUEST, 10_000_000, None, "users")
        watch.stream = Stream()
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(left.recv(10)))
        reader.start()
        reader.join(5.0)  # a blocked read, ended by the shutdown
        assert not reader.is_alive() and got == [b""]
        error = watch.failed(httpx.ReadError("peer closed"))
        assert isinstance(error, DeadlineExceeded) and error.service == "users"
        assert isinstance(error.__cause__, httpx.ReadError)
    finally:
        left.close()
        right.close()


def test_an_error_before_the_deadline_is_passed_through() -> None:
    watch = watch_attempt(REQUEST, 60_000_000_000, None, "users")
    error = httpx.ConnectError("refused")
    assert watch.failed(error) is error
