"""pi0lite in a simulator nobody here wrote: Meta-World v3 (MuJoCo), headless, from pixels.

``metaworld.py`` (the adapter: gymnasium-style env yielding pi0lite observations), ``egl.py``
(headless rendering set-up and its error message), ``data.py`` (scripted-expert demonstrations,
cached), ``train.py`` (the sim model config and training arrays), ``policy.py``, ``evaluate.py``
(fixed task variations and seeds), ``demo.py`` (``python -m pi0lite.sim.demo``).

Needs the ``sim`` extra (``pip install -e '.[sim]'``) and Debian's EGL packages. Importing this
package sets ``MUJOCO_GL=egl`` (unless already set) *before* anything imports mujoco; mujoco reads
it once, at its own import.
"""

import os
import sys

#: True when mujoco was imported before this package could choose its GL backend (then EGL is off).
MUJOCO_IMPORTED_FIRST = "mujoco" in sys.modules and "MUJOCO_GL" not in os.environ
os.environ.setdefault("MUJOCO_GL", "egl")
