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
export MUJOCO_GL ?= egl
EGL_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1

.PHONY: install egl test-deps test test-unit test-notebooks demo sim-demo lab student bench site clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,notebooks,sim]'
	touch $(STAMP)

install: $(STAMP)

# Headless MuJoCo rendering (Meta-World) needs Debian's EGL libraries: installed here when missing
# and running as root; otherwise the apt-get line is printed and make stops.
egl:
	@missing=""; if command -v dpkg >/dev/null; then \
	  for p in $(EGL_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing$$missing"; apt-get update -qq && apt-get install -y -qq $(EGL_PACKAGES); \
	  else echo "headless rendering needs:$$missing. Run: sudo apt-get install -y $(EGL_PACKAGES)"; exit 1; fi; fi

# What the browser and widget tests need beyond the venv: Debian's `chromium` (installed here when
# missing and running as root; otherwise the browser tests fail naming the package) and Colab's
# ipywidgets 7.7.1 in a directory of its own (tests/test_widgets.py puts it first on a subprocess's path).
IPYWIDGETS7 := $(VENV)/ipywidgets7
test-deps: install $(IPYWIDGETS7)/.installed
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "make: Debian package 'chromium' is missing (apt-get install -y chromium, as root): the browser tests will fail"; fi; }
$(IPYWIDGETS7)/.installed: | $(PY)
	$(PY) -m pip install --quiet --no-deps --target $(IPYWIDGETS7) 'ipywidgets==7.7.1' 'ipython_genutils==0.2.0'
	touch $@

# Lint (ruff: pyflakes + unused noqa), unit tests (with the browser tests: the explorers in JupyterLab,
# a 3-notebook build of the site), then every notebook (solutions and student copies) under nbval.
test: install egl test-deps
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

# Meta-World: expert demonstrations (cached), pi0 and MSE trained at once, per-task evaluation.
sim-demo: install egl
	$(PY) -m pi0lite.sim.demo --out outputs/sim

# JupyterLab rooted at the repository, opened on student/ (the exercises); notebooks/ (the
# solutions) is one folder up in the file browser.
lab: install
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/student

student: install
	$(PY) tools/make_student.py

bench: install
	$(PY) benchmarks/bench_pi0.py
	$(PY) benchmarks/bench_fast.py
	$(PY) benchmarks/roofline.py
	$(PY) benchmarks/bench_rtc.py

# The static course site: every notebook executed into site/ (open site/index.html), then its browser test.
site: install test-deps
	$(PY) tools/build_site.py --out site
	PI0LITE_SITE=$(CURDIR)/site $(PY) -m pytest -q tests/test_browser_site.py

clean:
	rm -rf $(VENV) .jax_cache outputs site
