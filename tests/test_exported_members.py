"""The public surface is a contract (httpx's `test_exported_members.py`): every name in
DESIGN.md's contract table exists, `__all__` is sorted and complete, and public classes
show as `meshclient.X`."""

from __future__ import annotations

import ast
import importlib
import pathlib

import httpx
import pytest

import meshclient
import meshclient.errors

#: DESIGN.md's contract table: dotted name -> the issue that lands it, or None when it is
#: already here. A pending name that is missing is an expected failure (xfail) naming its
#: issue; once every branch is merged, PENDING entries should all pass (then drop them).
CONTRACT: dict[str, str | None] = {
    "meshclient.MeshTransport": None,
    "meshclient.AsyncMeshTransport": None,
    "meshclient.Client": None,
    "meshclient.AsyncClient": None,
    "meshclient.Policy": None,
    "meshclient.Policy.from_dict": None,
    "meshclient.Policy.load": None,
    "meshclient.Policy.from_env": None,
    "meshclient.PolicyStore": None,
    "meshclient.default_store": None,
    "meshclient.errors": None,
    "meshclient.errors.MeshError": None,
    "meshclient.handler": None,
    "meshclient.asgi.MeshMiddleware": None,
    "meshclient.wsgi.MeshMiddleware": None,
    "meshclient.retrying": None,
    "meshclient.retrying.retry_if_budget": None,
    "meshclient.retrying.stop_at_deadline": None,
    "meshclient.retrying.record_retry": None,
    "meshclient.retrying.wait_backoff": None,
    "meshclient.retrying.retrying": None,
    "meshclient.retrying.async_retrying": None,
    "meshclient.retrying.deadline": None,
    "meshclient.retrying.time_left": None,
}
#: The CLI subcommands the contract names, and who lands the pending ones.
COMMANDS: dict[str, str | None] = {"check": None, "bench": None, "resolve": None,
                                   "status": None, "demo": None}


def _lookup(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("dotted", sorted(CONTRACT))
def test_contract_name_exists(dotted: str) -> None:
    try:
        obj = _lookup(dotted)
    except (AttributeError, ModuleNotFoundError):
        if CONTRACT[dotted]:
            pytest.xfail(f"{dotted} lands with {CONTRACT[dotted]}")
        raise
    assert obj is not None
    top = dotted.split(".")[1]
    if dotted.count(".") == 1:
        assert top in meshclient.__all__, f"{top} missing from meshclient.__all__"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_contract_commands(command: str) -> None:
    from meshclient.cli import COMMANDS as registered

    if command not in registered and COMMANDS[command]:
        pytest.xfail(f"`meshclient {command}` lands with {COMMANDS[command]}")
    assert command in registered


def test_all_is_sorted_and_exported() -> None:
    assert meshclient.__all__ == sorted(meshclient.__all__)
    for name in meshclient.__all__:
        assert hasattr(meshclient, name), name


def test_every_public_member_is_in_all() -> None:
    exported = set(meshclient.__all__)
    public = {n for n, v in vars(meshclient).items()
              if not n.startswith("_") and not isinstance(v, type(meshclient))} - {"annotations"}
    assert public <= exported, sorted(public - exported)


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
    assert issubclass(errors.MeshTransportError, errors.MeshError)
    assert not issubclass(errors.MeshError, httpx.TransportError)
    for name in ("TimeoutOverrideError", "TokenAnswerError", "RetryingError", "PolicyError"):
        assert issubclass(getattr(errors, name), ValueError), name  # callers catch ValueError
    assert issubclass(errors.SchemeDowngrade, httpx.UnsupportedProtocol)


PACKAGE = pathlib.Path(meshclient.__file__).parent


def _defined_exceptions() -> list[tuple[str, str, type[BaseException]]]:
    """(module, class name, class) for every exception class any meshclient module defines."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module_name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module_name.endswith("__main__"):
            continue  # runs the CLI on import
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        if not names:
            continue
        module = importlib.import_module(module_name)
        for name in names:
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                found.append((module_name, name, obj))
    return found


def test_every_defined_error_is_a_mesh_error_and_exported() -> None:
    found = _defined_exceptions()
    assert len(found) >= 20, found  # the walk sees the package
    tree = meshclient.errors.__doc__ or ""
    problems = []
    for module_name, name, cls in found:
        if not issubclass(cls, meshclient.MeshError):
            problems.append(f"{module_name}.{name} is not a MeshError")
        if name.startswith("_"):
            continue  # a private marker that never leaves its module (breaker's _Failure)
        if getattr(meshclient.errors, name, None) is not cls:
            problems.append(f"{module_name}.{name} is not exported from meshclient.errors")
        if getattr(meshclient, name, None) is not cls:
            problems.append(f"{module_name}.{name} is not exported from meshclient")
        if f" {name}" not in tree:
            problems.append(f"{module_name}.{name} is missing from the tree in errors.py")
    assert not problems, "\n".join(problems)


def test_raised_in_a_call_is_a_mesh_error() -> None:
    """A malformed per-request timeout is refused from inside the transport as a MeshError
    that is still the ValueError callers caught before."""
    policy = meshclient.Policy.from_dict({"services": {"users": {"endpoints": ["127.0.0.2:9"]}}})
    with httpx.Client(transport=meshclient.MeshTransport(policy)) as client:
        request = client.build_request("GET", "http://users/",
                                       extensions={"meshclient.timeout": -1})
        with pytest.raises(meshclient.MeshError) as info:
            client.send(request)
    assert isinstance(info.value, ValueError)
    assert "meshclient.timeout" in str(info.value) and "-1" in str(info.value)


def test_retrying_surface() -> None:
    """`meshclient.retrying`'s `__all__` is sorted and complete, and its strategies are
    tenacity's own kinds (so they compose with `|` and `&`)."""
    from tenacity.retry import retry_base
    from tenacity.stop import stop_base

    r = meshclient.retrying
    assert r.__all__ == sorted(r.__all__)
    source = ast.parse(pathlib.Path(r.__file__ or "").read_text(encoding="utf-8"))
    public = {n.name for n in source.body  # defined there (meshclient.X rewrites __module__)
              if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and not n.name.startswith("_")}
    assert public == set(r.__all__)
    assert issubclass(r.retry_if_budget, retry_base)
    assert issubclass(r.stop_at_deadline, stop_base)
    assert issubclass(r.RetryingError, meshclient.MeshError)


def test_cli_parser_builds() -> None:
    from meshclient.cli import build_parser

    build_parser()  # every listed subcommand module imports and registers
