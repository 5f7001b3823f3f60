"""The on-disk copy of the last good policy (`MESHCLIENT_POLICY_CACHE`).

Written atomically: the document goes to a temporary file in the same directory, is
flushed and fsynced, then renamed over the cache (`os.replace` is atomic on POSIX and
Windows), so a crash mid-write leaves the old cache, never half a document. The raw
document is kept (JSON or TOML as served), so it reloads exactly as it was validated.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from ..errors import PolicyError
from ._document import MAX_DOCUMENT_BYTES
from ._model import Policy
from ._parse import policy_from_text

logger = logging.getLogger("meshclient.control")


def write_cache(path: str | Path, document: bytes) -> None:
    """Replace the cache with `document`; an OSError is logged, never raised."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(document)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        logger.warning("policy cache %s not written: %s", path, exc)


def read_cache(path: str | Path) -> tuple[Policy, bytes] | None:
    """The cached policy and its document, or None (missing, unreadable or invalid: logged)."""
    path = Path(path)
    try:
        with open(path, "rb") as file:  # bounded: a runaway cache file is rejected below
            document = file.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("policy cache %s not read: %s", path, exc)
        return None
    try:
        return policy_from_text(document, origin=str(path)), document
    except PolicyError as exc:
        logger.warning("policy cache %s ignored, invalid: %s", path, exc)
        return None
