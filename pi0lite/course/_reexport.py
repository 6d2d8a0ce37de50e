"""Re-export the public names of every submodule of a package (used by ``checks`` and ``viz``).

Both packages are split into small files, one concern each; users import from the package
(``from pi0lite.course.viz import plot_attn_mask``) and never need to know which file holds what.
"""

from __future__ import annotations

import importlib
import pkgutil


def reexport(package_name: str, package_path, namespace: dict, prefixes: tuple[str, ...]) -> list[str]:
    names = []
    for info in sorted(pkgutil.iter_modules(package_path), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        for name in getattr(module, "__all__", dir(module)):
            if name.startswith(prefixes):
                namespace[name] = getattr(module, name)
                names.append(name)
    return names
