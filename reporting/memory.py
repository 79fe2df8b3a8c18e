"""Give memory freed by a stage back to the operating system before the next one starts.

A nightly run holds one slice, then the commit, then the report: each frees its frames when it
ends, but glibc's malloc and Arrow's memory pool keep freed pages for reuse, so the process's
resident size stays at the largest stage so far and the next stage's memory adds to it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import pyarrow as pa


def release_freed_memory() -> None:
    """Collect garbage, then return freed pages of Arrow's pool and of malloc to the OS."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    _malloc_trim()


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    if name is None:  # not glibc (e.g. musl): nothing to trim
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)
