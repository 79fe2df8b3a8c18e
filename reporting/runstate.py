"""Cron safety around the ledger: one run at a time (a lock), and which inputs changed.

The lock is a file holding the owner's PID, host and start time, guarded by `flock`: the kernel
releases it when its process dies, even by SIGKILL, so a lock left behind by a dead run is
recognised (its file still names the dead owner) and taken over, with a warning in the log.
The input state records the size and SHA-256 of every input file a successful run processed,
so the next run can skip the unchanged ones.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from reporting.errors import ReportingError

log = logging.getLogger("reporting")

LOCK_FILE = "_lock"
STATE_FILE = "_inputs_state.json"
HASH_CHUNK_BYTES = 1 << 20


class LockHeld(ReportingError):
    """Another run holds the ledger: this one stops at once (exit 75, EX_TEMPFAIL)."""

    exit_code = 75


@contextmanager
def ledger_lock(root: Path, started_at: datetime) -> Iterator[None]:
    """Hold the ledger's lock for the block; raise LockHeld if a live run has it."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(_held_message(path, _owner(handle))) from None
        previous = _owner(handle)
        if previous:
            log.warning(
                "took over a stale lock %s left by pid %s on %s (started %s), which is gone",
                path, previous.get("pid"), previous.get("host"), previous.get("started_at"),
            )  # fmt: skip
        _write_owner(handle, started_at)
        try:
            yield
        finally:
            handle.truncate(
                0
            )  # an empty file is a free lock; never unlink (others may hold it open)
            handle.flush()


def _owner(handle: Any) -> dict[str, Any]:
    handle.seek(0)
    text = handle.read()
    try:
        return dict(json.loads(text)) if text.strip() else {}
    except json.JSONDecodeError:
        return {"pid": "?", "host": "?", "started_at": "?"}


def _write_owner(handle: Any, started_at: datetime) -> None:
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": started_at.isoformat()}
    handle.seek(0)
    handle.truncate(0)
    handle.write(json.dumps(owner))
    handle.flush()
    os.fsync(handle.fileno())


def _held_message(path: Path, owner: dict[str, Any]) -> str:
    return (
        f"{path}: another greenops run holds the ledger lock (pid {owner.get('pid', '?')} on "
        f"{owner.get('host', '?')}, started {owner.get('started_at', '?')}). This run stops; "
        "cron will try again next time."
    )


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file's bytes (read in chunks; memory stays flat)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        return {"size": path.stat().st_size, "sha256": digest.hexdigest()}
    except OSError:
        return {"size": None, "sha256": None}  # unreadable: the reader reports why


def read_state(root: Path) -> dict[str, dict[str, Any]]:
    path = root / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_state(root: Path, fingerprints: dict[str, dict[str, Any]]) -> None:
    """Record processed files' fingerprints (merged with earlier ones), atomically."""
    merged = {**read_state(root), **fingerprints}
    tmp = root / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(dict(sorted(merged.items())), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, root / STATE_FILE)
