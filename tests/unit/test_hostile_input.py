"""Property tests: the parsers the background refreshers feed with outside input never raise.

`Applier.apply` (a control document) and `EtcdResolver`'s value parser (one key under a
discovery prefix) take arbitrary bytes: each answer is either applied / an endpoint, or a
rejection with a short reason; nothing escapes to kill the thread that called them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient._etcd import KeyValue
from meshclient.discovery import Endpoint
from meshclient.discovery.etcd import EXCERPT_CHARS, EtcdResolver
from meshclient.policy import PolicyStore
from meshclient.policy.apply import MAX_ERROR_CHARS, MAX_ERRORS, Applier

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20)

documents = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["version", "services", "defaults", "authorization",
                                     "retry", "routes"]), json_values, max_size=4)
    .map(lambda v: json.dumps(v).encode()),
    st.integers(1, 50_000).map(lambda n: b"[" * n),
    st.integers(1, 50_000).map(lambda n: b'{"a":' * n),
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(documents)
def test_any_control_document_is_applied_or_rejected_briefly(document: bytes) -> None:
    store = PolicyStore()
    applier = Applier(store, "test")
    before = applier.stats.rejected
    if not applier.apply(document):
        if applier.stats.rejected > before:
            errors = applier.last_errors
            assert 0 < len(errors) <= MAX_ERRORS + 1
            assert all(len(e) <= MAX_ERROR_CHARS for e in errors)
        else:
            assert applier.stats.unchanged == 1


@pytest.fixture(scope="module")
def etcd_resolver() -> Iterator[EtcdResolver]:
    """One resolver for every example: making one builds an HTTP client (~0.1 s), which
    dominated the test. Each example starts from the fresh state (see `_fresh`)."""
    resolver = EtcdResolver("etcd://127.0.0.1:9/mesh/users", "127.0.0.1:9", "/mesh/users/")
    yield resolver
    resolver.close()


def _fresh(resolver: EtcdResolver) -> EtcdResolver:
    """The value-parsing state of a just-made resolver: nothing skipped, nothing counted."""
    resolver.skipped.clear()
    resolver.skipped_total = 0
    resolver._logged.clear()
    return resolver


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(value=documents, revision=st.integers(1, 1000))
def test_any_etcd_value_is_an_endpoint_or_skipped_with_a_short_reason(
        etcd_resolver: EtcdResolver, value: bytes, revision: int) -> None:
    resolver = _fresh(etcd_resolver)
    kv = KeyValue("/mesh/users/x", value, revision)
    endpoint = resolver._endpoint(kv)
    if endpoint is None:
        assert len(resolver.skipped["/mesh/users/x"]) <= EXCERPT_CHARS
        assert resolver.skipped_total == 1
        assert resolver._endpoint(kv) is None and resolver.skipped_total == 1  # once
    else:
        assert isinstance(endpoint, Endpoint) and resolver.skipped == {}
