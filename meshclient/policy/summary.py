"""A one-line summary of what a policy swap changed, for the swap log line and events."""

from __future__ import annotations

import dataclasses

from ._model import Policy


def summarize(old: Policy, new: Policy) -> str:
    """E.g. `"+orders, -legacy, users(routes, fault), defaults(retry)"`, or `"no change"`.

    `+name` is a new service, `-name` a removed one, `name(fields)` a service whose named
    sections changed.
    """
    parts = [f"+{name}" for name in sorted(new.services) if name not in old.services]
    parts += [f"-{name}" for name in sorted(old.services) if name not in new.services]
    for name in sorted(set(old.services) & set(new.services)):
        a, b = old.services[name], new.services[name]
        if a != b:
            fields = [f.name for f in dataclasses.fields(a)
                      if f.init and getattr(a, f.name) != getattr(b, f.name)]
            parts.append(f"{name}({', '.join(fields)})")
    if old.defaults != new.defaults:
        fields = [f.name for f in dataclasses.fields(old.defaults)
                  if getattr(old.defaults, f.name) != getattr(new.defaults, f.name)]
        parts.append(f"defaults({', '.join(fields)})")
    return ", ".join(parts) or "no change"
