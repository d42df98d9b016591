"""Where commands write: checks that run before anything is written, so nothing is clobbered.

Every CLI that writes files calls these on its destinations while it validates its other
inputs, before any decoding, training or copying. An existing file, or a folder that is not
empty (a shipped model under ``assets/``, an earlier run), is refused unless the command was
given ``--force``; the message names the path and the way out.

    >>> check_destination("outputs/new-run", kind="folder", force=False)
    PosixPath('outputs/new-run')
"""

from __future__ import annotations

from pathlib import Path


class DestinationError(ValueError):
    """A command would overwrite something, or cannot write where it was told to."""


def check_destination(path: str | Path, *, kind: str, force: bool, hint: str = "pass --force to overwrite it") -> Path:
    """Refuse ``path`` if writing there would replace existing work; return it as a ``Path``.

    Args:
        path: the file or folder the command will write.
        kind: ``"file"`` (refused if it exists) or ``"folder"`` (refused if it holds anything).
        force: the command's ``--force``: allow overwriting (a file in the way of a folder, or
            a folder in the way of a file, is refused even then).
        hint: how the user gets past the refusal, appended to the message.

    Raises:
        DestinationError: with the path, what is there, and ``hint``.
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind ({kind!r}) must be 'file' or 'folder'")
    path = Path(path)
    if kind == "folder":
        if path.exists() and not path.is_dir():
            raise DestinationError(f"{path} is a file, not a folder; choose another destination")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise DestinationError(f"{path} already exists and is not empty; {hint}")
    else:
        if path.is_dir():
            raise DestinationError(f"{path} is a folder, not a file; choose another destination")
        if path.exists() and not force:
            raise DestinationError(f"{path} already exists; {hint}")
        if not path.parent.is_dir():
            raise DestinationError(f"{path.parent} is not an existing folder, so {path} cannot be written there")
    return path


def check_input(path: str | Path, what: str, kind: str = "file") -> Path:
    """``path`` as a ``Path`` if it is an existing file (or folder); else a ``ValueError`` naming ``what``."""
    path = Path(path)
    ok = path.is_file() if kind == "file" else path.is_dir()
    if not ok:
        raise ValueError(f"{what} {path} is not an existing {kind}")
    return path
