"""Files that survive a kill: atomic directory and file writes, and an exclusive run-directory lock.

* :func:`atomic_directory` — write a whole directory (a policy checkpoint) into a temporary sibling
  ``.NAME.new-PID``, fsync every file and the directory, then rename it into place. An existing
  ``NAME`` is moved aside to ``.NAME.old-PID`` first and deleted only once the new one is in place;
  a kill in the short gap between those two renames is repaired by :func:`recover` (called before
  every load and save), which puts the old directory back. A kill at any moment therefore leaves
  either the complete old directory or the complete new one, never a mix.
* :func:`atomic_write_bytes` / :func:`atomic_write_text` — the same for one file (temp + fsync + rename).
* :func:`describe_differences` — the fields where a saved record and a request differ (for refusals).
* :class:`RunLock` — ``fcntl.flock`` on ``DIR/.lock`` (the lock dies with the process, so a killed
  run never leaves a stale lock). A second run into the same directory fails at once with
  :class:`DirectoryInUse` ("directory in use by pid N"). Creating the lock file is also the
  writability check: an unwritable directory fails before any work is done.

``stage(name)`` is called at every step of a save; it does nothing, and exists so that the kill
tests can stop a save at a chosen point.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import shutil
import tempfile


class DirectoryInUse(RuntimeError):
    """Another process holds the run directory's lock."""


def stage(name: str) -> None:
    """A named point inside a save (no-op; tests replace it to pause or kill there)."""


def fsync_path(path) -> None:
    """Flush a file or a directory entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _siblings(target: pathlib.Path, kind: str) -> list[pathlib.Path]:
    return sorted(target.parent.glob(f".{target.name}.{kind}-*"))


def recover(target) -> None:
    """Repair what a kill during :func:`atomic_directory` left behind.

    ``target`` missing but ``.target.old-*`` present: the kill hit between the two renames; the old
    directory goes back. Leftover ``.new-*`` (incomplete) and ``.old-*`` (superseded) directories of
    processes that no longer run are deleted.
    """
    target = pathlib.Path(target)
    if not target.parent.exists():
        return
    old = [p for p in _siblings(target, "old") if not _alive(p)]
    if not target.exists() and old and (old[-1] / "d").is_dir():
        os.rename(old[-1] / "d", target)
    for p in old + [p for p in _siblings(target, "new") if not _alive(p)]:
        shutil.rmtree(p, ignore_errors=True)


def _alive(sibling: pathlib.Path) -> bool:
    """Is the process that made ``.NAME.new-PID-xxxx`` / ``.old-PID-xxxx`` still running?"""
    try:
        pid = int(sibling.name.rsplit(".", 1)[1].split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_directory(target):
    """``with atomic_directory(d) as tmp:`` write the files into ``tmp``; on exit ``tmp`` becomes ``d``.

    On an exception inside the block ``d`` is left untouched and ``tmp`` removed.
    """
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.new-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private (0700); a checkpoint is an ordinary directory
    try:
        yield tmp
        for f in tmp.iterdir():
            fsync_path(f)
        fsync_path(tmp)
        stage("synced")
        old = None
        if target.exists():
            old = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
            os.rename(target, old / "d")  # a directory cannot replace a non-empty one: move it aside
            stage("old moved aside")
        os.rename(tmp, target)
        fsync_path(target.parent)
        stage("renamed")
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling, fsync and rename."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private (0600); give it the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


class RunLock:
    """Exclusive lock on a run directory for the life of a ``with`` block (or of the process).

    The directory is created if needed; an unwritable directory raises ``PermissionError`` /
    ``OSError`` naming it, another holder raises :class:`DirectoryInUse` naming its pid.
    """

    def __init__(self, directory):
        self.directory = pathlib.Path(directory)
        self.path = self.directory / ".lock"
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise type(e)(e.errno, f"run directory {self.directory} is not writable: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DirectoryInUse(f"{self.directory}: directory in use by pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def describe_differences(saved, wanted, prefix: str = "") -> list[str]:
    """``["field: saved vs wanted", ...]`` for every leaf where two nested dicts differ."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        out = []
        for k in sorted(set(saved) | set(wanted), key=str):
            a, b = saved.get(k, "<absent>"), wanted.get(k, "<absent>")
            out += describe_differences(a, b, f"{prefix}{k}" if not prefix else f"{prefix}.{k}")
        return out
    norm = lambda x: list(x) if isinstance(x, tuple) else x  # JSON turns tuples into lists
    return [] if norm(saved) == norm(wanted) else [f"{prefix}: {saved!r} vs {wanted!r}"]
