"""Course helpers: exercise checks, plots, the mask-explorer widget and the 2-D flow toy.

* :mod:`pi0lite.course.checks` — ``check_*`` self-checks for the notebook exercises;
* :mod:`pi0lite.course.viz` — every plot (functions take arrays and an optional ``ax``);
* :mod:`pi0lite.course.widgets` — the ipywidgets mask explorer;
* :mod:`pi0lite.course.flow2d` — the 2-D flow-matching toy of notebook 05.

Notebooks use ``from pi0lite.course import checks, viz``.
"""
