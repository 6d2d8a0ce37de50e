"""Headless rendering: MuJoCo draws through EGL (Mesa's software llvmpipe on a CPU-only machine).

``require_egl()`` checks, before mujoco is imported, that the shared libraries EGL needs can be
loaded, and otherwise raises a ``RuntimeError`` that names the Debian packages to install.
"""

from __future__ import annotations

import ctypes
import glob
import os

DEBIAN_PACKAGES = ("libegl1", "libegl-mesa0", "libgl1-mesa-dri", "libgbm1")
APT_LINE = "apt-get install -y " + " ".join(DEBIAN_PACKAGES)
#: library → the Debian package that provides it
LIBRARIES = {"libEGL.so.1": "libegl1", "libEGL_mesa.so.0": "libegl-mesa0", "libgbm.so.1": "libgbm1"}
DRI_GLOBS = ("/usr/lib/*/dri/swrast_dri.so", "/usr/lib/dri/swrast_dri.so", "/usr/lib64/dri/swrast_dri.so")


def _loadable(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def missing_packages(loadable=_loadable, dri_globs=DRI_GLOBS) -> list[str]:
    """Debian packages whose EGL/Mesa libraries cannot be found (empty when all is well)."""
    missing = [pkg for lib, pkg in LIBRARIES.items() if not loadable(lib)]
    if not any(glob.glob(pattern) for pattern in dri_globs):
        missing.append("libgl1-mesa-dri")
    return missing


def require_egl(loadable=_loadable, dri_globs=DRI_GLOBS) -> None:
    """Raise ``RuntimeError`` naming the Debian packages if headless EGL rendering cannot work."""
    if os.environ.get("MUJOCO_GL", "egl") != "egl":
        return  # the user chose another backend (osmesa, glfw): their call
    missing = missing_packages(loadable, dri_globs)
    if missing:
        raise RuntimeError(
            f"headless rendering needs EGL, but these Debian packages seem missing: {', '.join(missing)}. "
            f"Install them with:  sudo {APT_LINE}   (or `make sim-demo` as root, which does it)"
        )
