"""Where the openpi reference data lives (``shared/parity``, ``shared/fast``).

The reference files are not part of the package: they sit in a ``shared`` directory beside
the repository (as in CI), or wherever ``PI0LITE_SHARED`` points. Tests (``tests/conftest.py``)
and notebook 15 find them the same way.
"""

from __future__ import annotations

import os
import pathlib


def shared_dir(start: os.PathLike | str | None = None) -> pathlib.Path:
    """``$PI0LITE_SHARED`` if set, else the first ``shared/`` next to ``start`` (default: the
    working directory) or one of its parents. Raises ``FileNotFoundError`` saying what to set."""
    if os.environ.get("PI0LITE_SHARED"):
        path = pathlib.Path(os.environ["PI0LITE_SHARED"]).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"PI0LITE_SHARED={path} is not a directory")
        return path
    here = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared"
        if (candidate / "parity").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no shared/parity directory found next to {here} or its parents; "
        "set PI0LITE_SHARED to the directory that holds parity/ and fast/"
    )
