"""All plotting in pi0lite. Functions take arrays and an optional ``ax`` and return the Axes.

They never call ``plt.show()``, never change rcParams or other global matplotlib state.
Each submodule covers one topic; every ``plot_*`` / ``animate_*`` is re-exported here.
"""

from pi0lite.course._reexport import reexport

__all__ = reexport(__name__, __path__, globals(), ("plot_", "animate_", "show_"))
