"""Write a file so that a crash leaves the old file or the new one, never half of either."""

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO, cast


@contextlib.contextmanager
def _replacing(path: Path, mode: str, **options: Any) -> Iterator[IO[Any]]:
    """Yield a temporary file next to ``path``; sync it and rename it over ``path`` on success.

    The file gets the mode a plain ``open`` would give it (mkstemp makes it 0600). Raises
    ``OSError`` when the directory or the file cannot be written; the temporary file is
    removed whatever happens.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, mode, **options) as out:
            os.fchmod(out.fileno(), 0o666 & ~current_umask())
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)  # only still there if the rename did not happen


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """Yield a UTF-8 text handle whose content replaces ``path`` only if the block ends well."""
    with _replacing(path, "w", encoding="utf-8", newline="") as out:
        yield cast(TextIO, out)


def write_atomically(path: Path, blob: bytes) -> None:
    """Replace ``path`` with ``blob`` in one step."""
    with _replacing(path, "wb") as out:
        out.write(blob)


_UMASK_LOCK = threading.Lock()  # the feature cache writes from several threads at once


def current_umask() -> int:
    """Return the process umask (reading it means setting it; it is set straight back)."""
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return mask
