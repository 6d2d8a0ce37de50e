# pi0lite: the two set-up commands are `make demo` and `make test`; `make lab` opens the course.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0
export JAX_PLATFORMS ?= cpu
export MPLBACKEND ?= Agg
export PYTHONHASHSEED ?= 0

.PHONY: install test test-unit test-notebooks demo lab student bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,notebooks]'
	touch $(STAMP)

install: $(STAMP)

# Lint (ruff: pyflakes + unused noqa), unit tests, then every notebook (solutions and student copies) under nbval.
test: install
	$(VENV)/bin/ruff check pi0lite tests tools benchmarks
	$(PY) -m pytest -q tests
	$(NBVAL)

# Only the notebooks (`make test-notebooks NOTEBOOKS=notebooks/02_attention_mask.ipynb` for one).
# --nbval-current-env: the kernel is this venv's python, where pi0lite is installed.
NOTEBOOKS ?= notebooks student
NBVAL = $(PY) -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
	--nbval-sanitize-with tests/nbval_sanitize.cfg $(NOTEBOOKS)
test-notebooks: install
	$(NBVAL)

demo: install
	$(PY) -m pi0lite.demo --out outputs

# JupyterLab rooted at the repository, opened on student/ (the exercises); notebooks/ (the
# solutions) is one folder up in the file browser.
lab: install
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/student

student: install
	$(PY) tools/make_student.py

bench: install
	$(PY) benchmarks/bench_pi0.py
	$(PY) benchmarks/bench_fast.py

clean:
	rm -rf $(VENV) .jax_cache outputs
