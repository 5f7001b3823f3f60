"""File discovery errors never quote the file: any JSON holding a marker string, read as an
endpoints file, either parses or fails with text that does not contain the marker."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.discovery.endpoint import DiscoveryError
from meshclient.discovery.file import FileResolver

MARK = "Zq9SECRETx"
leaf = st.sampled_from([MARK, f"{MARK}:80", f"a: {MARK}", f"[{MARK}]", f"'{MARK}'", 1, None,
                        True, "127.0.0.1:80", 70000])
documents = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["address", "weight", "zone", "metadata", "priority", MARK,
                     f"{MARK}: x", "endpoints"]), inner, max_size=3), max_leaves=8)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(documents)
def test_errors_never_quote_the_file(document: object) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "endpoints.json"
        path.write_text(json.dumps(document))
        try:
            resolution = FileResolver(f"file://{path}", str(path)).resolve()
        except DiscoveryError as exc:
            assert MARK not in str(exc).replace(str(path), "")
            assert str(exc).startswith(str(path))
        else:
            assert isinstance(resolution.endpoints, tuple)
