"""The project's set-up files agree with each other."""

import pathlib
import re
import tomllib

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_environment_yml_parses_and_matches_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip_lines = next(d["pip"] for d in deps if isinstance(d, dict))
    (editable,) = [line for line in pip_lines if line.startswith("-e")]
    extras = set(re.search(r"\[(.*)\]", editable).group(1).split(","))
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert extras <= set(project["optional-dependencies"]), extras
    assert extras == {"test", "notebooks", "sim"}
    assert project["requires-python"].startswith(">=3.11")


def test_core_pins():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in ("jax==0.10.2", "jaxlib==0.10.2", "flax==0.12.8", "optax==0.2.8"):
        assert pin in deps
    cuda = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["cuda12"]
    assert cuda == ["jax[cuda12]==0.10.2"]


def test_sim_extra_pins_metaworld_and_the_makefile_installs_it():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["sim"] == ["metaworld==3.1.1", "packaging"]
    makefile = (REPO / "Makefile").read_text()
    assert "sim]" in makefile and "MUJOCO_GL" in makefile
    for pkg in ("libegl1", "libegl-mesa0", "libgl1-mesa-dri", "libgbm1"):
        assert pkg in makefile
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.index("make egl") < ci.index("make test")


def test_makefile_and_ci_use_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "JAX_COMPILATION_CACHE_DIR" in makefile and "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" in makefile
