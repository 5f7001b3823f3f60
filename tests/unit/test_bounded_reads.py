"""Files and numbers that arrive from outside are read within bounds, and a malformed value
is an error of its own kind (never a ValueError from `int()` or a MemoryError)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from meshclient.discovery.endpoint import split_address
from meshclient.policy.cache import read_cache
from meshclient.security.bearer import MAX_SECRET_CHARS, read_secret
from meshclient.security.credentials import CredentialsError


def test_a_runaway_policy_cache_is_refused_unread(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="meshclient.control"):
        assert read_cache("/dev/zero") is None  # reads at most the limit + 1 byte


def test_a_token_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "token"
    big.write_text("x" * (MAX_SECRET_CHARS + 10))
    with pytest.raises(CredentialsError, match="larger than"):
        read_secret(None, str(big), {}, "bearer")
    with pytest.raises(CredentialsError, match="larger than"):
        read_secret(None, "/dev/zero", {}, "bearer")


def test_a_token_file_that_is_not_text_is_named_without_its_bytes(tmp_path: Path) -> None:
    binary = tmp_path / "token"
    binary.write_bytes(b"\xff\xfesecret")
    with pytest.raises(CredentialsError) as info:
        read_secret(None, str(binary), {}, "bearer")
    assert "not UTF-8" in str(info.value) and "secret" not in str(info.value).replace(str(binary), "")


@pytest.mark.parametrize("address", ["127.0.0.1:\u00b2", "127.0.0.1:\u0668\u0660", "h:"])
def test_a_port_in_other_digits_is_refused_by_name(address: str) -> None:
    with pytest.raises(ValueError, match="must be host:port"):
        split_address(address)
