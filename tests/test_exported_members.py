"""The public surface is a contract (httpx's `test_exported_members.py`): every name in
DESIGN.md's contract table exists, `__all__` is sorted and complete, and public classes
show as `meshclient.X`."""

from __future__ import annotations

import httpx

import meshclient
import meshclient.errors

#: The contract table of DESIGN.md (module-level names; the submodule ones are checked below).
CONTRACT = ("MeshTransport", "AsyncMeshTransport", "Client", "AsyncClient", "Policy",
            "PolicyStore", "default_store", "errors")


def test_all_is_sorted_and_exported() -> None:
    assert meshclient.__all__ == sorted(meshclient.__all__)
    for name in meshclient.__all__:
        assert hasattr(meshclient, name), name


def test_every_public_member_is_in_all() -> None:
    exported = set(meshclient.__all__)
    public = {n for n, v in vars(meshclient).items()
              if not n.startswith("_") and not isinstance(v, type(meshclient))} - {"annotations"}
    assert public <= exported, sorted(public - exported)


def test_contract_names_exist() -> None:
    for name in CONTRACT:
        assert name in meshclient.__all__, name
        assert getattr(meshclient, name) is not None


def test_module_is_rewritten() -> None:
    for name in meshclient.__all__:
        obj = getattr(meshclient, name)
        if isinstance(obj, type):
            assert obj.__module__ == "meshclient", f"{name}.__module__ == {obj.__module__!r}"


def test_transport_types() -> None:
    assert issubclass(meshclient.MeshTransport, httpx.BaseTransport)
    assert issubclass(meshclient.AsyncMeshTransport, httpx.AsyncBaseTransport)
    assert issubclass(meshclient.Client, httpx.Client)
    assert issubclass(meshclient.AsyncClient, httpx.AsyncClient)


def test_policy_constructors() -> None:
    for name in ("from_dict", "load", "from_env", "to_dict"):
        assert callable(getattr(meshclient.Policy, name)), name
    assert isinstance(meshclient.default_store(), meshclient.PolicyStore)


def test_error_hierarchy() -> None:
    errors = meshclient.errors
    for name in errors.__all__:
        assert hasattr(errors, name), name
    assert issubclass(errors.PolicyError, errors.MeshError)
    assert issubclass(errors.NoEndpointsAvailable, httpx.ConnectError)
    assert issubclass(errors.CircuitOpen, httpx.ConnectError)
    assert issubclass(errors.DeadlineExceeded, httpx.TimeoutException)
    assert issubclass(errors.MeshTransportError, httpx.TransportError)
    assert not issubclass(errors.MeshError, httpx.TransportError)


def test_cli_commands_listed() -> None:
    from meshclient.cli import COMMANDS, build_parser

    assert "check" in COMMANDS and "bench" in COMMANDS
    build_parser()  # every listed subcommand module imports and registers
