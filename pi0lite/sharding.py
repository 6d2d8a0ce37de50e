"""A device mesh with axes ``("data", "fsdp")``, the FSDP parameter rule, and a sharded train step.

Everything here is JAX's own machinery (``jax.make_mesh``, ``NamedSharding``, ``jax.jit`` with
explicit shardings, ``jax.lax.with_sharding_constraint``); XLA's SPMD partitioner inserts the
all-gathers of sharded weights and the reductions of gradients. The same code runs on one CPU,
on a GPU mesh and across several processes (see :mod:`pi0lite.train`).

Mesh. ``devices = data × fsdp``. The batch is split over **both** axes (every device gets
``batch / devices`` examples); parameters are split over ``fsdp`` only and replicated over
``data``. ``fsdp = 1`` is plain data parallelism, ``data = 1`` is pure FSDP (ZeRO-3).

The FSDP rule (:func:`fsdp_spec`, the same as openpi's ``fsdp_sharding``): replicate when the fsdp
axis has size 1, for scalars and vectors, and for arrays smaller than ``min_bytes`` (4 MiB, openpi's
threshold: gathering many tiny arrays costs more than it saves); otherwise split the **largest axis
whose size the fsdp size divides** (axes tried from largest to smallest, ties: the earlier axis),
and replicate if none divides. The rule looks only at shapes, so AdamW's ``mu`` and ``nu`` get the
sharding of their parameter. Differences from openpi: ties are broken towards the earlier axis
(openpi's ``argsort`` picks the later one), and the mesh axis is called ``data`` (openpi: ``batch``).

Axis letters: b batch; any parameter axes.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
FSDP_AXIS = "fsdp"
#: The batch is split over both mesh axes (openpi's ``DATA_AXIS = ("batch", "fsdp")``).
BATCH_AXES = (DATA_AXIS, FSDP_AXIS)
MIN_SHARD_BYTES = 4 * 2**20  # openpi: arrays under 4 MiB stay replicated

_ACTIVE_MESH: list[Mesh] = []


def make_mesh(fsdp: int = 1, devices=None) -> Mesh:
    """A ``(data, fsdp)`` mesh over ``devices`` (default: every device of every process).

    ``data = len(devices) // fsdp``. Axis types are ``Auto``: XLA decides the layout of
    intermediates from the shardings we give the inputs, outputs and a few constraints.
    """
    devices = list(jax.devices() if devices is None else devices)
    if fsdp < 1 or len(devices) % fsdp:
        raise ValueError(f"fsdp ({fsdp}) must be a positive divisor of the device count ({len(devices)})")
    return jax.make_mesh(
        (len(devices) // fsdp, fsdp), BATCH_AXES, axis_types=(AxisType.Auto, AxisType.Auto), devices=devices
    )


def data_parallel_mesh(batch_size: int, fsdp: int = 1) -> Mesh | None:
    """A mesh over every device when there are several and ``batch_size`` splits evenly over them;
    ``None`` on one device (callers then use a plain ``jax.jit``). Used by the toy training."""
    n = jax.device_count()
    if n == 1:
        return None
    if batch_size % n:
        raise ValueError(f"batch_size ({batch_size}) must be divisible by the device count ({n}) to shard the batch")
    return make_mesh(fsdp)


def fsdp_spec(shape: tuple[int, ...], itemsize: int, fsdp_size: int, min_bytes: int = MIN_SHARD_BYTES) -> P:
    """The PartitionSpec of one array under the FSDP rule (see the module docstring)."""
    if fsdp_size == 1 or len(shape) < 2 or math.prod(shape) * itemsize < min_bytes:
        return P()
    for axis in sorted(range(len(shape)), key=lambda i: (-shape[i], i)):
        if shape[axis] % fsdp_size == 0:
            return P(*([None] * axis + [FSDP_AXIS]))
    return P()


def state_shardings(state: Any, mesh: Mesh, min_bytes: int = MIN_SHARD_BYTES) -> Any:
    """A ``NamedSharding`` for every array leaf of ``state`` (parameters, optimiser state, ...)."""
    fsdp_size = mesh.shape[FSDP_AXIS]

    def one(x):
        shape, dtype = np.shape(x), getattr(x, "dtype", None)
        itemsize = np.dtype(dtype).itemsize if dtype is not None and not _is_key(x) else 0
        return NamedSharding(mesh, fsdp_spec(tuple(shape), itemsize, fsdp_size, min_bytes))

    return jax.tree.map(one, state)


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over both mesh axes, the rest replicated."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard(tree: Any, shardings: Any) -> Any:
    """Place ``tree`` on the mesh (``jax.device_put`` leaf by leaf)."""
    return jax.device_put(tree, shardings)


@contextlib.contextmanager
def use_mesh(mesh: Mesh):
    """Within this block :func:`activation_constraint` pins activations to the batch sharding."""
    _ACTIVE_MESH.append(mesh)
    try:
        yield mesh
    finally:
        _ACTIVE_MESH.pop()


def activation_constraint(x: jax.Array) -> jax.Array:
    """Split ``x``'s batch axis over the mesh when one is active (openpi's
    ``activation_sharding_constraint``); the identity otherwise (one device, tests, notebooks)."""
    if not _ACTIVE_MESH:
        return x
    return jax.lax.with_sharding_constraint(x, batch_sharding(_ACTIVE_MESH[-1]))


def sharded_jit(
    step: Callable, mesh: Mesh, state_sharding: Any, *, batch_argnums: tuple[int, ...] = (1,),
    num_args: int = 3, donate: bool = True,
) -> Callable:
    """``jax.jit(step)`` with explicit shardings for ``step(state, *args) -> (state, metrics)``.

    Argument 0 (the state) and output 0 get ``state_sharding``; arguments in ``batch_argnums``
    (pytrees of arrays with a leading batch axis) get :func:`batch_sharding`; other arguments and
    the metrics are replicated. The input state is donated (its buffers are reused for the output).
    The step is traced inside :func:`use_mesh`, so activation constraints apply.
    """
    in_sh = [state_sharding] + [
        batch_sharding(mesh) if i in batch_argnums else replicated(mesh) for i in range(1, num_args)
    ]

    def traced(*args):
        with use_mesh(mesh):
            return step(*args)

    return jax.jit(
        traced, in_shardings=tuple(in_sh), out_shardings=(state_sharding, replicated(mesh)),
        donate_argnums=(0,) if donate else (),
    )


def describe(tree: Any) -> dict[str, str]:
    """``{'/'-joined path: PartitionSpec}`` of every array leaf (for printing and tests)."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)
        out[name] = str(leaf.sharding.spec) if hasattr(leaf.sharding, "spec") else str(leaf.sharding)
    return out
