"""``pi0lite.openpi.shared.shared_dir`` finds the reference data as tests/conftest.py does."""

import pytest

from pi0lite.openpi.shared import shared_dir


def test_env_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("PI0LITE_SHARED", str(tmp_path))
    assert shared_dir() == tmp_path


def test_env_variable_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("PI0LITE_SHARED", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="PI0LITE_SHARED"):
        shared_dir()


def test_found_beside_a_parent(tmp_path, monkeypatch):
    monkeypatch.delenv("PI0LITE_SHARED", raising=False)
    (tmp_path / "shared" / "parity").mkdir(parents=True)
    notebooks = tmp_path / "repo" / "notebooks"
    notebooks.mkdir(parents=True)
    assert shared_dir(notebooks) == (tmp_path / "shared").resolve()


def test_not_found_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("PI0LITE_SHARED", raising=False)
    with pytest.raises(FileNotFoundError, match="set PI0LITE_SHARED"):
        shared_dir(tmp_path)
