"""Compiled calls on split state: walk the module graph once, not on every call.

``nnx.jit(f)(model, ...)`` splits the module into a graph definition and a state on every call
and merges it back afterwards. On the toy sizes that Python-side walk costs more than the
computation itself (TINY ``compute_loss``: ~8 ms through ``nnx.jit``, ~2.4 ms through ``jax.jit``
on split state). The pattern here: split once, ``jax.jit`` a function of ``(state, *args)`` that
merges inside the trace, and keep calling it with the same state.

Pure calls (no parameter updates), e.g. sampling in a rollout loop::

    sample = compiled.bind(model, lambda m, key, obs: m.sample_actions(key, obs))
    actions = sample(key, obs)           # no graph traversal per call

The state shares its variables with the module, so in-place updates (``optimizer.update``,
``v[...] = ...``) are seen by the next call; :meth:`Bound.rebind` is for a module whose
variables were replaced or whose structure changed.

Calls that update the module (a training step) return the new state::

    graphdef, state = nnx.split((model, optimizer))
    step = compiled.stateful(graphdef, train_step_fn)     # train_step_fn(pair, *args) -> out
    state, out = step(state, *args)                       # ``state`` is donated: use the new one
    nnx.update((model, optimizer), state)                 # when the objects are needed again

The compiled function is cached per (graph definition, function, static names), so rebinding a
model of the same structure reuses the trace.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
from flax import nnx

__all__ = ["Bound", "bind", "pure", "stateful"]


@functools.lru_cache(maxsize=64)
def pure(graphdef: nnx.GraphDef, fn: Callable, static_argnames: Sequence[str] = ()) -> Callable:
    """``jax.jit`` of ``(state, *args) -> fn(merge(graphdef, state), *args)``; updates are dropped."""

    def run(state, *args, **kwargs):
        before = jax.tree.leaves(state)
        module = nnx.merge(graphdef, state)
        out = fn(module, *args, **kwargs)
        after = jax.tree.leaves(nnx.state(module))
        if len(before) != len(after) or any(a is not b for a, b in zip(before, after)):
            raise ValueError(f"{getattr(fn, '__name__', fn)} updated the module; use compiled.stateful for that")
        return out

    return jax.jit(run, static_argnames=tuple(static_argnames))


@functools.lru_cache(maxsize=64)
def stateful(graphdef: nnx.GraphDef, fn: Callable, static_argnames: Sequence[str] = ()) -> Callable:
    """``jax.jit`` of ``(state, *args) -> (new_state, fn(module, *args))``, the input state donated."""

    def run(state, *args, **kwargs):
        module = nnx.merge(graphdef, state)
        out = fn(module, *args, **kwargs)
        return nnx.state(module), out

    return jax.jit(run, static_argnames=tuple(static_argnames), donate_argnums=0)


class Bound:
    """A pure compiled call bound to one module's current state (see :func:`bind`)."""

    def __init__(self, module: Any, fn: Callable, static_argnames: Sequence[str] = ()):
        graphdef, self.state = nnx.split(module)
        self.fn, self.static_argnames = fn, tuple(static_argnames)
        self._run = pure(graphdef, fn, self.static_argnames)

    def __call__(self, *args, **kwargs):
        return self._run(self.state, *args, **kwargs)

    def rebind(self, module: Any) -> "Bound":
        """The same call on ``module``'s current parameters (reuses the trace if the structure matches)."""
        return Bound(module, self.fn, self.static_argnames)


def bind(module: Any, fn: Callable, *, static_argnames: Sequence[str] = ()) -> Bound:
    """``fn(module, *args)`` compiled once on the split state of ``module``; call it as ``bound(*args)``.

    The bound state shares the module's variables (in-place updates are seen); after variables
    are replaced by new ones, call :meth:`Bound.rebind`. ``fn`` must not update the module (use
    :func:`stateful` for that): an update raises ``ValueError`` when the call is traced.
    """
    return Bound(module, fn, static_argnames)
