"""Files a user may have been sent: opened so that a planted link, a FIFO, a device or an endless file can do no
harm. The one place nasp opens the files of run and study folders (``nasp.runfolder`` builds on it).

Readers open with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO opens at once instead of waiting for a writer), accept only
a regular file (``fstat``), and read at most a bound: ``MAX_JSON_BYTES`` (1 MiB) for a JSON file (config,
status, result, study manifest), ``MAX_JSONL_BYTES`` (64 MiB) for a JSON-lines file (events, metrics, history);
a genotype file 4 MiB (``nasp.genotype``), a space file and a ``--config`` file 1 MiB. A file the user names
directly may be a link (they chose it); a file inside a run folder may not.
Writers create or append only to a regular file with one name (no symbolic link, no hard link to a file elsewhere)
inside the folder they are given. Anything else is a ``FileRefusedError``: one line naming the file and why.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from nasp.errors import FileRefusedError

MAX_JSON_BYTES = 1 << 20  # 1 MiB: config.json, status.json, result.json, study.json
MAX_JSONL_BYTES = 64 << 20  # 64 MiB: events.jsonl, metrics.jsonl, history.jsonl
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
BINARY = getattr(os, "O_BINARY", 0)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _refusal(path: Path, exc: OSError) -> FileRefusedError | None:
    """The refusal for a link (ELOOP from O_NOFOLLOW) or a FIFO nobody reads (ENXIO), else None."""
    import errno

    if exc.errno == errno.ELOOP:
        return FileRefusedError(f"'{path}' is a symbolic link; nasp reads and writes only regular files in a run "
                                f"folder, never through a link")
    if exc.errno == errno.ENXIO:
        return FileRefusedError(f"'{path}' is a FIFO (named pipe), not a regular file")
    return None


def open_regular(path: str | Path, flags: int = os.O_RDONLY, follow: bool = False, mode: int = 0o644) -> int:
    """A file descriptor of the regular file ``path`` (``flags`` as os.open's). FileRefusedError for a link
    (unless ``follow``), a FIFO, a device, a socket, a folder, and for a writer a file with other names (a hard
    link); OSError (FileNotFoundError...) as os.open raises it otherwise."""
    path = Path(path)
    try:
        fd = os.open(path, flags | NONBLOCK | CLOEXEC | BINARY | (0 if follow else NOFOLLOW), mode)
    except OSError as exc:
        refused = _refusal(path, exc)
        if refused is not None:
            raise refused from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefusedError(f"'{path}' is {_kind(st.st_mode)}, not a regular file")
        if flags & (os.O_WRONLY | os.O_RDWR) and st.st_nlink > 1:
            raise FileRefusedError(f"'{path}' has {st.st_nlink} names (a hard link to a file elsewhere); nasp writes "
                                   f"only files it created")
        if NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: str | Path, limit: int, follow: bool = False) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them: a longer file is a FileRefusedError
    naming the bound. OSError when it cannot be opened (missing, no permission)."""
    fd = open_regular(path, os.O_RDONLY, follow)
    try:
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileRefusedError(f"'{path}' is larger than {_size(limit)}, the most nasp reads of such a file")
    return b"".join(chunks)


def read_from(path: str | Path, offset: int, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path`` from ``offset`` (a follower's next part)."""
    fd = open_regular(path, os.O_RDONLY)
    try:
        n = max(0, min(limit, os.fstat(fd).st_size - offset))
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, n) if n else b""
    finally:
        os.close(fd)


def append_bytes(path: str | Path, data: bytes) -> None:
    """``data`` appended with one write to the regular file ``path`` (created when missing)."""
    fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def create_new(path: str | Path) -> int:
    """A new, empty regular file ``path`` open for writing (a stale file or link of that name is removed first:
    the name is ours, what it pointed to is never touched)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return open_regular(path, flags)
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return open_regular(path, flags)


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} bytes"


def exists(path: str | Path) -> bool:
    """Whether ``path`` names something on disk, a dangling link included; a text too long to be a path (a
    genotype string, say) is not a file: False, never OSError."""
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False
