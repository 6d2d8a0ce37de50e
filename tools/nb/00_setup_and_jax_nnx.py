"""Builder of notebooks/00_setup_and_jax_nnx.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "00_setup_and_jax_nnx",
        "00 · Setup, JAX keys and `nnx.Module`",
        """
        This course builds **pi0**, Physical Intelligence's vision-language-action model, one idea
        per notebook. All model code lives once, in the `pi0lite` package; the notebooks import
        it, explain it, draw it, and let you re-write the key pieces as **exercises that check
        themselves**.

        This first notebook covers: how to run the course, JAX random keys, `flax.nnx` modules,
        the shape legend used everywhere, and how exercises and checks work.

        **How to run the course**

        | where | how |
        | --- | --- |
        | locally (CPU) | `make install`, then `make lab` (JupyterLab opens `student/`; `notebooks/` is next to it); every notebook runs in under a minute on a 2-core laptop |
        | locally (NVIDIA GPU) | `.venv/bin/pip install -e '.[cuda12]'` (CUDA 12 driver); nothing else changes |
        | Google Colab | open a notebook from `student/` (or `notebooks/` for the solutions) and run the first cell: it installs pi0lite from `PI0LITE_SOURCE` (until the project is public, run `%env PI0LITE_SOURCE=<pip requirement>` first: a `git+https://` URL of your copy, or an uploaded wheel); choose *Runtime → Change runtime type → GPU* first for the CUDA build |

        `notebooks/` holds the **solutions**; `student/` holds the same notebooks with the exercise
        bodies removed. Work in `student/`.
        """,
    )
    nb.md(
        """
        The cell above is the same in every notebook. On Colab it installs pi0lite; locally it
        does nothing. It also turns on JAX's persistent compilation cache, so the second run of a
        notebook skips most compilation. It must run before `jax` is imported.
        """
    )
    nb.code(
        """
        import jax
        import jax.numpy as jnp
        import numpy as np
        from flax import nnx

        import pi0lite
        from pi0lite.course import checks

        np.set_printoptions(precision=3, suppress=True)  # print arrays rounded
        print("pi0lite", pi0lite.__version__, "| jax", jax.__version__)
        """
    )
    nb.md(
        """
        ## 1. Random numbers need keys

        JAX has no hidden global random state. Every random function takes a **key**, and the
        same key always gives the same numbers. To get new numbers you **split** a key into
        fresh, independent keys, and never reuse a key you have split.
        """
    )
    nb.code(
        """
        key = jax.random.key(0)
        a = jax.random.normal(key, (3,))
        b = jax.random.normal(key, (3,))
        assert np.array_equal(a, b)  # same key → same numbers

        key_1, key_2 = jax.random.split(key)
        c = jax.random.normal(key_1, (3,))
        d = jax.random.normal(key_2, (3,))
        assert not np.allclose(c, d)  # different keys → different numbers
        print("a =", a, " c =", c, " d =", d)
        """
    )
    nb.md(
        """
        In pi0lite this rule shows up everywhere: functions take a `key` argument, modules take
        `rngs` (a bundle of keys) when they are built, and every random function also accepts the
        random values themselves (`noise=`, `time=`), so tests can pin them down.

        ### Exercise 0.1 — two independent draws

        Write `two_normals(key, shape)` that returns two **different** arrays of standard normal
        samples, `(a, b)`, both of the given `shape`. Split `key` once with `jax.random.split`;
        draw `a` from the first half and `b` from the second.
        """
    )
    nb.exercise(
        "0.1",
        "split the key and draw twice",
        '''
        def two_normals(key, shape):
            """Return (a, b): standard normal arrays of `shape` from the two halves of `key`."""
            ### BEGIN SOLUTION
            key_a, key_b = jax.random.split(key)
            return jax.random.normal(key_a, shape), jax.random.normal(key_b, shape)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_two_normals(two_normals)")
    nb.hint(
        """
        `key_a, key_b = jax.random.split(key)` unpacks the two new keys. Then
        `jax.random.normal(key_a, shape)` and `jax.random.normal(key_b, shape)`.
        """
    )
    nb.md(
        """
        ## 2. Modules with `flax.nnx`

        An `nnx.Module` is a plain Python object that holds its parameters. You build it with
        `rngs` (for the initial weights) and call it like a function. This tiny two-layer MLP is
        only a demonstration; the real modules live in `pi0lite`.
        """
    )
    nb.code(
        '''
        class TinyMLP(nnx.Module):
            """x [b, d_in] → [b, d_out] through one hidden GELU layer."""

            def __init__(self, d_in: int, d_hidden: int, d_out: int, *, rngs: nnx.Rngs):
                self.hidden = nnx.Linear(d_in, d_hidden, rngs=rngs)
                self.out = nnx.Linear(d_hidden, d_out, rngs=rngs)

            def __call__(self, x):
                return self.out(jax.nn.gelu(self.hidden(x)))


        mlp = TinyMLP(2, 16, 3, rngs=nnx.Rngs(0))
        y = mlp(jnp.ones((5, 2)))
        print("output shape:", y.shape)
        print("hidden kernel shape:", mlp.hidden.kernel[...].shape)  # read a variable with [...]
        '''
    )
    nb.md(
        """
        Parameters are `nnx.Param` variables: read one with `param[...]` (not `.value`, which is
        deprecated). `nnx.state(model, nnx.Param)` collects them all into a tree of arrays, and
        `nnx.jit` compiles a function that takes a module.
        """
    )
    nb.code(
        """
        params = nnx.state(mlp, nnx.Param)
        print(jax.tree.map(jnp.shape, nnx.to_pure_dict(params)))


        @nnx.jit
        def forward(model, x):
            return model(x)


        assert np.allclose(forward(mlp, jnp.ones((5, 2))), y, atol=1e-6)
        """
    )
    nb.md(
        """
        ### Exercise 0.2 — count the parameters

        Write `count_params(model)`: the total number of scalar entries in all `nnx.Param`
        variables of `model`. Batch-norm statistics (`nnx.BatchStat`) are state, not parameters,
        and must not be counted. It should also work on an *abstract* model built with
        `nnx.eval_shape` (its leaves have `.shape` but no data).
        """
    )
    nb.exercise(
        "0.2",
        "count the scalars in the nnx.Param variables",
        '''
        def count_params(model):
            """Number of scalars in the model's nnx.Param variables (an int)."""
            ### BEGIN SOLUTION
            leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
            return int(sum(np.prod(leaf.shape) for leaf in leaves))
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_count_params(count_params)")
    nb.hint(
        """
        `jax.tree.leaves(nnx.state(model, nnx.Param))` is a list of arrays. Add up the number
        of entries of each: `np.prod(leaf.shape)`. Return a Python `int`.
        """
    )
    nb.md(
        """
        Exercises are *leaves*: whatever you wrote above, the notebook now continues with the
        package's version, `pi0lite.params.count_params`. That is the pattern of the whole
        course. Here it counts a model of a million parameters without allocating it:
        """
    )
    nb.code(
        """
        from pi0lite.params import count_params

        abstract = nnx.eval_shape(lambda: TinyMLP(1000, 1000, 10, rngs=nnx.Rngs(0)))
        print("TinyMLP(1000, 1000, 10):", f"{count_params(abstract):,}", "parameters")
        assert count_params(abstract) == 1000 * 1000 + 1000 + 1000 * 10 + 10
        """
    )
    nb.md(
        """
        ## 3. The shape legend

        Every pi0lite module writes its array shapes with single letters, in the docstring, in
        the `jaxtyping` annotations and in `einsum` strings. There is **one** legend for the
        whole package (the docstring of `pi0lite/__init__.py`), so a letter never means two
        things. The letters you will meet most:

        | letter | axis |
        | --- | --- |
        | `b` | batch |
        | `t` / `s` | tokens as queries / as keys (sequence) |
        | `p` / `q` | prefix tokens / suffix tokens |
        | `a` | action steps (the action horizon) |
        | `j` | action dims |
        | `d` / `e` | model width / action-expert width |
        | `n`, `k`, `h` | query heads, key/value heads, head dim (inside attention) |

        Each module's docstring names the letters it uses; the annotation of a function is its
        contract. For example:
        """
    )
    nb.code(
        """
        import inspect

        from pi0lite.masks import make_attn_mask

        print(inspect.signature(make_attn_mask))
        """
    )
    nb.md(
        """
        `Bool[ArrayLike, "b t"]` reads "a bool array of shape (batch, sequence)", and the result
        `Bool[Array, "b t t"]` is one (query, key) matrix per example.

        ## 4. How exercises and checks work

        * An **exercise cell** starts with `# Exercise N.M: …`. It gives you the signature and the
          docstring; in the student notebook the body is `raise NotImplementedError(...)`: replace
          it with your code.
        * The **check cell** after it calls `pi0lite.course.checks.check_<name>(your_function)`. It runs
          hand-built cases first, then random ones, against the package. On success it prints one
          line starting with ✓. On failure it raises an `AssertionError` that names the case, the
          first wrong index, the expected and the actual value, and a hint when your answer looks
          like a known mistake.
        * **Hints** sit in a collapsed *Hint* cell under the exercise: click to open.
        * After each exercise the notebook continues with the package function, so if you are
          stuck you can still run everything below.

        Here is what a failing check looks like (a `two_normals` that reuses the key):
        """
    )
    nb.code(
        """
        def reuses_the_key(key, shape):
            return jax.random.normal(key, shape), jax.random.normal(key, shape)


        try:
            checks.check_two_normals(reuses_the_key)
        except AssertionError as err:
            print("AssertionError:", err)
        """
    )
    nb.md(
        """
        The checks compare against the package, so the reference solutions are never really
        hidden: this is a self-study course, and reading `pi0lite`'s source after trying is
        encouraged.
        """
    )
    nb.summary(
        """
        * Run the course locally (`make lab`), on a GPU (`pip install -e '.[cuda12]'`) or on Colab
          (the first cell installs pi0lite).
        * JAX randomness is explicit: split keys, never reuse them; pi0lite functions take `key`,
          modules take `rngs`, and random values can be passed in (`noise=`, `time=`).
        * `nnx.Module`s hold their parameters; read variables with `[...]`; `nnx.state`,
          `nnx.jit` and `nnx.eval_shape` work on whole modules
          (`pi0lite.params.count_params` counts them).
        * Shapes are written with single letters; the signature is the contract.
        * Exercise → check → hint → continue with the package version.

        Next: **01 · What pi0 sees**, the token sequence.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
