"""Checks by name: a policy's `extension_providers` first, then `register_check`'s
registry. A `CUSTOM` authorization rule names its provider; this finds the check.

```python
check = named_check(store.current, "opa")   # an ExtAuthz, a registered function, or None
```

An `ExtAuthz` is built once per provider (an equal provider in a newer policy snapshot
keeps it, with its connections and cached decisions).
"""

from __future__ import annotations

import threading

from ..policy import ExtensionProvider, Policy
from .checks import CheckFn, registered_check
from .extauthz import ExtAuthz

_built: dict[ExtensionProvider, ExtAuthz] = {}
_lock = threading.Lock()
#: Most providers kept built (a control plane cycling through many configurations).
_MAX_BUILT = 64


def provider_check(provider: ExtensionProvider) -> ExtAuthz:
    """The check of `provider`, built on first use."""
    check = _built.get(provider)
    if check is None:
        with _lock:
            check = _built.get(provider)
            if check is None:
                if len(_built) >= _MAX_BUILT:
                    _built.clear()
                check = _built[provider] = ExtAuthz(provider.ext_authz_http,
                                                    name=provider.name)
    return check


def named_check(policy: Policy | None, name: str) -> CheckFn | None:
    """The check called `name`: a provider of `policy`, else a registered check, else
    None."""
    if policy is not None:
        for provider in policy.extension_providers:
            if provider.name == name:
                return provider_check(provider)
    return registered_check(name)
