"""Self-checks for the notebook exercises: ``check_<exercise>(fn_or_answer)``.

Each submodule holds the checks of one notebook topic; every ``check_*`` is re-exported here.
A check runs hand-built cases first, then random ones, against the package reference. On failure
it raises ``AssertionError`` naming the case, the first wrong index, expected vs got and a hint
for the known mistake; on success it prints one short line.
"""

from pi0lite.course._reexport import reexport

__all__ = reexport(__name__, __path__, globals(), ("check_",))
