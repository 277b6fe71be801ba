"""An advisory lock on an open file, without depending on one platform at import time.

``fcntl.flock`` where it exists (POSIX), else ``msvcrt.locking`` (Windows); the operating system drops either
when the process exits, however it exits. Where neither exists the lock is the pid written in the file: held
while that process is alive (weaker: two processes starting at the same instant can both take it)."""

from __future__ import annotations

import contextlib
import os

try:
    import fcntl
except ImportError:  # Windows, or a Python built without it
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # every platform but Windows
    msvcrt = None  # type: ignore[assignment]

MECHANISM = "flock" if fcntl is not None else "msvcrt" if msvcrt is not None else "pid"
_REGION = 1 << 30  # msvcrt locks bytes: one far past the pid, so reading the holder's pid is never blocked


def try_lock(fd: int, exclusive: bool = True) -> bool:
    """Take the lock on ``fd`` without waiting; False when another process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is not None:
        os.lseek(fd, _REGION, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    if _holder_alive(fd):
        return False
    if exclusive:
        write_pid(fd)
    return True


def unlock(fd: int) -> None:
    """Drop the lock taken on ``fd`` (the fd stays open)."""
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        elif msvcrt is not None:
            os.lseek(fd, _REGION, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            os.ftruncate(fd, 0)


def probe(fd: int) -> bool:
    """Whether another process holds the lock (taken and dropped at once when it is free)."""
    if fcntl is None and msvcrt is None:
        return _holder_alive(fd)
    if not try_lock(fd, exclusive=msvcrt is not None):  # msvcrt has no shared lock
        return True
    unlock(fd)
    return False


def holder(fd: int) -> str:
    """The pid written in the lock file, as text ('unknown' when there is none)."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 32).decode(errors="replace").strip() or "unknown"


def write_pid(fd: int) -> None:
    """This process's pid as the file's whole content."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, str(os.getpid()).encode())


def _holder_alive(fd: int) -> bool:
    text = holder(fd)
    if not text.isdigit():
        return False
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, someone else's
        return True
    return True
