"""One object per process (a pooled HTTP session, a thread pool, a broker connection).

A worker forked from a parent that had made one must make its own: sockets and threads do not
survive a fork in a usable state, and two processes sharing one socket interleave their bytes."""

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """`get()` is `make()`'s result, made once per process (and again when `key()` changes)."""

    def __init__(self, make: Callable[[], T], key: Callable[[], object] = lambda: None) -> None:
        self._make, self._key = make, key
        self._lock = threading.Lock()
        self._value: T | None = None
        self._owner: tuple[int, object] | None = None

    def get(self) -> T:
        owner = (os.getpid(), self._key())
        with self._lock:
            if self._owner != owner:
                self._value, self._owner = self._make(), owner
            return self._value
