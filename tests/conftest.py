"""Shared test fixtures. The reference data lives in ../shared beside the repository (as in CI)."""

from __future__ import annotations

import os
import pathlib
import pkgutil

import warnings

import pytest
from beartype.roar import BeartypeDecorHintPep585DeprecationWarning
from jaxtyping import install_import_hook

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = pathlib.Path(__file__).resolve().parents[1]

# Every annotated function of pi0lite except course/ (the model modules, fast/, openpi/, sim/ and
# toy/) is checked at call time (shapes and dtypes, consistent axis sizes across arguments) by
# beartype for the whole test session (this must run before anything imports pi0lite). course/ is
# left out: its plotting and teaching helpers take looser inputs (student answers of any shape,
# which the checks must judge, not reject) than their annotations state. PI0LITE_TYPECHECK=0 turns
# the hook off (to time the difference); PI0LITE_UNCHECKED lists the sub-packages left out.
TYPECHECKED = sorted(
    f"pi0lite.{m.name}" for m in pkgutil.iter_modules([str(REPO / "pi0lite")]) if m.name not in os.environ.get("PI0LITE_UNCHECKED", "course demo").split()
)
if os.environ.get("PI0LITE_TYPECHECK", "1") != "0":
    # beartype with the PEP 484 numeric tower: an int is accepted where a float is annotated
    install_import_hook(TYPECHECKED, "beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))")
    # beartype nags about typing.Sequence (PEP 585); the hints are right, only their spelling is old
    warnings.filterwarnings("ignore", category=BeartypeDecorHintPep585DeprecationWarning)


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "ignore::beartype.roar.BeartypeDecorHintPep585DeprecationWarning")

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
