"""Shared test fixtures. The reference data lives in ../shared beside the repository (as in CI)."""

from __future__ import annotations

import os
import pathlib

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("PI0LITE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference data not found at {SHARED} (set PI0LITE_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def parity_dir(shared_dir) -> pathlib.Path:
    return shared_dir / "parity"


@pytest.fixture(scope="session")
def fast_dir(shared_dir) -> pathlib.Path:
    return shared_dir / "fast"
