"""Atomic file writes, per-artifact locks and the kill points the reliability tests use.

**The guarantee.** Every file the course writes (checkpoints, ``results.json``, figures,
GIFs, CSV and Markdown tables, manifests, reference models, executed notebooks, the
README) is written through this module: into a temporary file in the same folder, flushed
to disk (``fsync``), then renamed over the target with ``os.replace``. A rename within one
folder is atomic, so a kill at any moment (closed lid, kernel restart, Ctrl-C, ``kill -9``,
a full disk) leaves either the old file or the new one, never a partial one; a reader in
another process sees one complete version or the other. What a kill can leave behind is a
hidden temporary folder ``.<name>.<pid>-<token>.tmp`` beside the target; the next write
of the same target removes those whose process is gone.

* ``atomic_write_text(path, text)`` / ``atomic_write_bytes(path, data)``;
* ``atomic_path(path)``: a context manager yielding the temporary path for writers that
  need a file name (``torch.save``, matplotlib's ``savefig``, PIL, papermill); it is
  renamed into place when the block succeeds and removed when it raises. The temporary
  file has the target's own name (in a private folder), so writers that infer the format
  from the suffix, or name things after the file (``torch.save``), still work.
* ``artifact_lock(path)``: an exclusive ``fcntl.flock`` on ``<path>.lock`` held while one
  process trains and publishes a cached artifact, so two notebooks asking for the same
  artifact train it once: the second waits (saying so) and then loads it. The lock dies
  with its process (``kill -9`` included); the ``.lock`` file itself stays, empty, and is
  harmless. Without ``fcntl`` (Windows) the lock is a no-op; the writes stay atomic.

**Kill points (a testing hook).** ``GAN_UTILS_KILL_AT`` makes a process kill itself with
``SIGKILL`` at a chosen moment, so tests can check that a real kill loses nothing:

* ``step:K``: the training loop (``gan_utils.core.loop.run_steps``, used by
  ``gan_utils.core.train.train``, Dist-GAN and the image recipe) dies right after
  generator step K, after any checkpoint of that step was written;
* ``write:NAME`` (or ``write:NAME:N``, the N-th such write of the process): this module
  dies after writing (and syncing) the temporary file of a target named ``NAME`` and
  before renaming it.

The variable is read once per write or training loop, never per tensor operation; unset,
it costs nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

KILL_ENV = "GAN_UTILS_KILL_AT"
FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, quota, file size limit
_writes: dict[str, int] = {}  # write:NAME:N counts this process's writes of NAME


# ---- kill points ---------------------------------------------------------------------------
def kill_point(kind: str) -> str | None:
    """The value of ``GAN_UTILS_KILL_AT`` after ``<kind>:`` (None when it names another kind).

    Raises:
        ValueError: the variable is set but is not ``step:K`` or ``write:NAME[:N]``.
    """
    value = os.environ.get(KILL_ENV, "")
    if not value:
        return None
    found, _, rest = value.partition(":")
    if found not in ("step", "write") or not rest:
        raise ValueError(
            f"{KILL_ENV} must be 'step:K' or 'write:NAME[:N]' (a testing hook), got {value!r}; "
            f"unset it to run normally"
        )
    return rest if found == kind else None


def kill_step() -> int | None:
    """K of ``GAN_UTILS_KILL_AT=step:K`` (None when unset or another kind)."""
    value = kill_point("step")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{KILL_ENV}=step:K needs an integer K >= 1, got {value!r}")
    return int(value)


def kill_now(reason: str) -> None:
    """Flush the output streams and kill this process with SIGKILL (the test hook)."""
    print(f"{KILL_ENV}: killing process {os.getpid()} {reason}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)  # pragma: no cover - no SIGKILL (Windows)


def _kill_before_rename(name: str) -> None:
    wanted = kill_point("write")
    if wanted is None:
        return
    target, _, count = wanted.partition(":")
    if target != name:
        return
    _writes[name] = _writes.get(name, 0) + 1
    if _writes[name] == (int(count) if count else 1):
        kill_now(f"after writing the temporary file of {name}, before the rename")


# ---- atomic writes -------------------------------------------------------------------------
def _temporary_pattern(path: Path) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(path.name)}\.(\d+)-[0-9a-f]+\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no permission to ask: assume alive
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries of ``path`` left by processes that no longer run (killed)."""
    pattern = _temporary_pattern(path)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(path.parent / name, ignore_errors=True)


def _new_temporary(path: Path, name: str) -> Path:
    """An empty file ``name`` in a new private folder ``.<target>.<pid>-<token>.tmp``."""
    while True:
        folder = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            folder.mkdir()
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        temporary = folder / name
        # created here (mode 0666 minus the umask, as a plain open would)
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        return temporary


def _fsync(path: Path, directory: bool = False) -> None:
    try:
        handle = os.open(path, os.O_RDONLY if directory else os.O_RDWR)
    except OSError:
        if directory:  # some systems cannot open or sync a folder: the rename still holds
            return
        raise
    try:
        os.fsync(handle)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(handle)


def write_failed_message(path: Path, why: str) -> str:
    """What a write that ran out of space says: the file, that it is unchanged, the fix."""
    return (
        f"could not write {path} ({why}; is the disk full?): it keeps its previous content "
        "(if any); free some disk space and run again (training resumes from its last "
        "checkpoint)"
    )


@contextlib.contextmanager
def atomic_path(path: str | Path, name: str | None = None) -> Iterator[Path]:
    """Yield a temporary path; publish it as ``path`` if the block succeeds.

    The block writes the whole file to the yielded path (any writer that takes a file
    name). The temporary file is called ``name`` (default: the target's own name, so that
    writers that read the format from the suffix work) and lives in a private hidden
    folder beside ``path``, on the same file system. On success it is synced to disk and
    renamed over ``path`` with ``os.replace``; if the block raises (Ctrl-C included) it is
    removed and ``path`` keeps its previous content. A kill at any moment leaves either
    the old file or the new one, never a partial one. The parent folder is created.

    Raises:
        FileNotFoundError: the block succeeded but left no file at the yielded path.
        OSError: the disk is full (ENOSPC, EDQUOT, EFBIG), naming ``path`` and saying it
            is unchanged; other errors of the writer pass through unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    temporary = _new_temporary(path, name or path.name)
    try:
        yield temporary
        if not temporary.is_file():
            raise FileNotFoundError(
                f"nothing was written to the temporary file {temporary} of {path}: the writer "
                "must write to the path atomic_path yields"
            )
        _fsync(temporary)
        _kill_before_rename(path.name)
        os.replace(temporary, path)
    except OSError as error:
        if error.errno not in FULL_DISK:
            raise
        raise OSError(error.errno, write_failed_message(path, error.strerror)) from error
    finally:  # published or failed: the private folder goes (a kill leaves it: see above)
        shutil.rmtree(temporary.parent, ignore_errors=True)
    _fsync(path.parent, directory=True)  # the rename itself survives a power cut


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (old file or new file, never a partial one)."""
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, encoded as given, newlines unchanged."""
    return atomic_write_bytes(path, text.encode(encoding))


# ---- one process at a time -----------------------------------------------------------------
def lock_path(path: str | Path) -> Path:
    """``<path>.lock``: the lock file of an artifact."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def artifact_lock(path: str | Path, log: Callable[[str], None] = print) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s artifact (``<path>.lock``) inside the block.

    Use it around "load the cached artifact, or train and publish it": a second process
    asking for the same artifact waits here (after one ``log`` line naming the artifact)
    until the first has published it, then finds it and loads it. The lock is released
    when the block ends or the process dies; the empty ``.lock`` file stays. Locks are
    per process: the same process taking it twice (nested) would wait for itself.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows: atomic writes only
        yield
        return
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{path}: another process is making it (lock {lock.name}); waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


__all__ = [
    "KILL_ENV",
    "artifact_lock",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_failed_message",
    "kill_now",
    "kill_point",
    "kill_step",
    "lock_path",
]
