"""Composing the policy in force from the local policy and what xDS sets.

The rule: **xDS for what it sets, the local policy for what xDS leaves unset.** The
fragment xDS resources translate to (`{"services": {…}}`) is merged over the local document
key by key: a section xDS sets replaces the same key of the local service's section (a list
— endpoints, routes — whole), a key it leaves out keeps the local value, a service only
one side names is taken as it is. `defaults`, `authorization` and every other top-level
section stay the local policy's. The result goes through `Policy.from_dict`, so a
fragment the model refuses is refused (and NACKed) like an invalid resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..policy import Policy, merge_documents, policy_to_dict


def compose(local: Policy, fragment: Mapping[str, Any], version: str) -> tuple[Policy, dict[str, Any]]:
    """The policy in force and its document; raises `PolicyError`."""
    document = policy_to_dict(local)
    services = dict(document.get("services") or {})
    for name, spec in (fragment.get("services") or {}).items():
        own = services.get(name)
        services[name] = merge_documents(own, spec) if isinstance(own, Mapping) else spec
    document["services"] = services
    document["version"] = f"{local.version}+{version}" if local.version else version
    return Policy.from_dict(document), document
