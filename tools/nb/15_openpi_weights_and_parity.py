"""Builder of notebooks/15_openpi_weights_and_parity.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "15_openpi_weights_and_parity",
        "15 · openpi weights and parity: how we know pi0lite equals openpi",
        """
        Every notebook so far said "pi0lite computes what openpi computes". This one shows the
        evidence, and how you would check it yourself:

        * open a **reference file** written by openpi: its parameters, its inputs (with the noise
          and time openpi drew) and every intermediate output;
        * read openpi's **parameter paths** and shapes, and find the pi0lite module that holds
          each one;
        * load them, run, **compare every output**, and read the error table: why errors of
          1e-6 are float32 round-off, and what a real bug looks like;
        * how a real openpi **orbax checkpoint** loads, what **bfloat16** weights change, and
          how big the real pi0 and pi0.5 files are.

        The reference files live outside the package, in `shared/parity` next to the repository
        (or wherever the environment variable `PI0LITE_SHARED` points), exactly where the tests
        look for them.
        """,
    )
    nb.code(
        """
        import json
        import pathlib
        import tempfile

        import jax.numpy as jnp
        import numpy as np
        from flax import nnx

        from pi0lite.config import PI0, PI05
        from pi0lite.course import checks
        from pi0lite.openpi import flatten_params, load_orbax, load_params, save_orbax
        from pi0lite.openpi.io import from_openpi_path
        from pi0lite.openpi.parity_pi0 import check_pi0, config_from_reference
        from pi0lite.openpi.roundoff import classify_error, kind_of
        from pi0lite.openpi.shared import shared_dir
        from pi0lite.params import count_params
        from pi0lite.pi0 import Pi0

        np.set_printoptions(precision=3, suppress=True)
        """
    )
    nb.md(
        """
        ## 1. A reference file

        openpi's own JAX code (commit `15a9616`, unmodified, at tiny sizes) was run once on CPU
        and everything was saved into one `.npz`: `param/…` (the weights), `in/…` (the
        observation, actions, and the noise and time openpi drew inside `compute_loss`),
        `out/…` (every intermediate: prefix tokens, masks, positions, the velocity `v_t`, the
        loss, the sampled actions) and `meta/json`.
        """
    )
    nb.code(
        """
        path = shared_dir() / "parity" / "pi0_seed0.npz"
        with np.load(path) as data:
            ref = {k: data[k] for k in data.files}
        meta = json.loads(str(ref["meta/json"]))
        groups = {}
        for key in ref:
            groups.setdefault(key.split("/")[0], []).append(key)
        print(path.name, f"{path.stat().st_size / 1e6:.1f} MB |", {g: len(keys) for g, keys in groups.items()})
        print("model:", meta["model"], "| cameras:", meta["camera_order"], "| batch", ref["in/state"].shape[0])
        print("outputs:", sorted(k[4:] for k in groups["out"]))
        """
    )
    nb.md(
        """
        ## 2. openpi's parameter paths

        A parameter's **path** is its place in openpi's parameter tree, joined with `/`. The
        same paths are used in openpi's checkpoints, so they are the contract between the two
        code bases. Read them like this:

        * `PaliGemma/img/…` is the SigLIP tower (notebook 14), `PaliGemma/llm/…` the Gemma
          mixture of transformers (notebooks 03–04), the rest pi0's own projections
          (`state_proj`, `action_in_proj`, `action_time_mlp_*`, `action_out_proj`);
        * a suffix `_1` marks the **action expert**'s weights (`q_einsum_1`, `mlp_1`,
          `final_norm_1`); no suffix is the VLM expert;
        * everything under `layers/` (and the tower's `encoderblock/`) has the **layer as its
          leading axis**: openpi scans over layers, so one array holds all of them;
        * `q_einsum/w` is `[layers, heads, width, head dim]`, `kv_einsum/w` is
          `[layers, 2 (keys, values), kv heads, width, head dim]`, `mlp/gating_einsum` is
          `[layers, 2 (gate, up), width, hidden]`.
        """
    )
    nb.code(
        """
        params = {k[len("param/"):]: v for k, v in ref.items() if k.startswith("param/")}
        print(len(params), "parameter arrays,", f"{sum(v.size for v in params.values()):,}", "numbers")
        for name in ["PaliGemma/img/embedding/kernel", "PaliGemma/img/pos_embedding", "PaliGemma/img/head/kernel",
                     "PaliGemma/llm/embedder/input_embedding", "PaliGemma/llm/layers/attn/q_einsum/w",
                     "PaliGemma/llm/layers/attn/kv_einsum/w", "PaliGemma/llm/layers/attn/q_einsum_1/w",
                     "PaliGemma/llm/layers/mlp/gating_einsum", "PaliGemma/llm/final_norm_1/scale",
                     "state_proj/kernel", "action_out_proj/kernel"]:
            print(f"  {name:<44} {params[name].shape}")
        """
    )
    nb.md(
        """
        pi0lite names its modules and attributes after these paths, and
        `pi0lite.openpi.flatten_params(model)` lists a model's parameters under exactly these
        paths. `config_from_reference` reads the sizes (widths, depths, heads) off the shapes;
        `load_params` then copies every array in and **refuses** anything that does not fit: a
        missing path, an unknown one, or a wrong shape.
        """
    )
    nb.code(
        """
        cfg = config_from_reference(ref)
        model = Pi0(cfg, rngs=nnx.Rngs(0))
        assert set(flatten_params(model)) == set(params)          # the same paths, nothing more or less
        load_params(model, params)
        for name, value in flatten_params(model).items():
            assert np.array_equal(value, params[name])

        broken = dict(params)
        broken["PaliGemma/llm/layers/attn/q_einsum/w"] = broken["PaliGemma/llm/layers/attn/q_einsum/w"][:, :4]
        del broken["action_out_proj/bias"]
        try:
            load_params(Pi0(cfg, rngs=nnx.Rngs(0)), broken)
        except ValueError as err:
            print(err)
        """
    )
    nb.md(
        """
        ### Exercise 15.1 — which module holds a parameter?

        Write `holder(model, path)`: return the pi0lite **module** that holds openpi parameter
        `path` (not the parameter itself). pi0lite keeps each expert's weights together, so first
        translate openpi's path into pi0lite's with `from_openpi_path`
        (`PaliGemma/llm/layers/attn/q_einsum_1/w` → `PaliGemma/llm/experts/1/attn/q_einsum/w`;
        other paths stay as they are). Then walk the model one part at a time:
        `model.PaliGemma` is an `nnx.Dict` (index it with `["llm"]`), `experts` is an `nnx.List`
        (index it with `[int(part)]`), everything else is an attribute. The last part of the path
        is the parameter's own name inside that module.
        The check finds the true holder without trusting names: it marks the parameter through
        `flatten_params` / `load_params` on a copy of the model and looks for the variable that
        changed.
        """
    )
    nb.exercise(
        "15.1",
        "find the module that holds an openpi parameter",
        '''
        def holder(model, path):
            """model: a Pi0; path: an openpi parameter path -> the nnx.Module holding it."""
            ### BEGIN SOLUTION
            node = model
            for part in from_openpi_path(path).split("/")[:-1]:
                if isinstance(node, nnx.List):
                    node = node[int(part)]
                elif isinstance(node, nnx.Dict):
                    node = node[part]
                else:
                    node = getattr(node, part)
            return node
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_holder(holder, model)")
    nb.hint(
        """
        `for part in from_openpi_path(path).split("/")[:-1]:` then step into `node[int(part)]`
        when `node` is an `nnx.List`, `node[part]` when it is an `nnx.Dict`, else
        `getattr(node, part)`. Return the node; do not step into the last part.
        """
    )
    nb.md(
        """
        ## 3. Run and compare every output

        `check_pi0(ref)` (also `python -m pi0lite.openpi check FILE.npz`) builds the model as
        above, feeds openpi's inputs **including its noise and time** (otherwise nothing random
        could be compared), runs `embed_prefix`, `embed_suffix`, the transformer, `compute_loss`
        and `sample_actions`, and returns the largest absolute difference of every output. We
        add each output's size (its largest absolute value) and the **relative** error.
        """
    )
    nb.code(
        """
        def error_table(reference, rows, float_kind="float32"):
            table = []
            for name, err, _ in rows:
                expected = reference[f"out/{name}"]
                scale = float(np.abs(expected.astype(np.float64)).max()) if expected.size else 0.0
                kind = kind_of(expected, float_kind)
                table.append((name, err, scale, kind))
            return table

        def show(table):
            print(f"{'output':<16}{'kind':>9}{'max |err|':>12}{'max |ref|':>11}{'relative':>11}  verdict")
            for name, err, scale, kind in table:
                rel = err / scale if scale else 0.0
                print(f"{name:<16}{kind:>9}{err:12.2e}{scale:11.3g}{rel:11.1e}  {classify_error(err, scale, kind)}")

        clean = error_table(ref, check_pi0(ref))
        show(clean)
        assert all(classify_error(*row[1:]) == "round-off" for row in clean)
        """
    )
    nb.md(
        """
        Masks and positions match **exactly**. Every float output differs by about 1e-6, a
        relative error between 1e-7 and 1e-6. Why is that not a bug? A float32 number carries 24
        significant bits, so every addition or multiplication rounds to a relative error of up
        to $2^{-24} \\approx 6 \\cdot 10^{-8}$ (numpy's `finfo(float32).eps` $= 2^{-23}$ is the
        spacing of numbers near 1). openpi and pi0lite perform the same mathematics **in a
        different order**: different einsum contractions, head grouping, fused operations. A
        sum of the same numbers in another order rounds differently. Through ~20 layers of
        matmuls, norms and softmaxes these differences add up to a few ulps of the output's
        size. The cell below shows the effect in miniature: one product computed in two
        orders, each compared with a float64 result.
        """
    )
    nb.code(
        """
        rng = np.random.default_rng(0)
        a, b, c = (rng.standard_normal((64, 64)).astype(np.float32) for _ in range(3))
        exact = (a.astype(np.float64) @ b) @ c
        left, right = (a @ b) @ c, a @ (b @ c)                              # same maths, other order
        size = np.abs(exact).max()
        print(f"float32 eps {np.finfo(np.float32).eps:.1e} | relative error: (ab)c {np.abs(left - exact).max() / size:.1e},"
              f" a(bc) {np.abs(right - exact).max() / size:.1e}, between the two {np.abs(left - right).max() / size:.1e}")
        assert 0 < np.abs(left - right).max() / size < 1e-5
        """
    )
    nb.md(
        """
        So the rule is: **exact outputs must be exact**; float outputs are round-off when the
        error is a small multiple of float32's precision *relative to the output's size*
        (`pi0lite.openpi.roundoff.classify_error`: relative error ≤ 1e-5 for float32, about 84
        ulps of headroom). An absolute tolerance alone misleads both ways: 3e-4 is fine on
        logits of size 100, and 1e-6 is a 50 % error on an output of size 2e-6.

        ### Exercise 15.2 — round-off or bug?

        Write `verdict(rows)`: `rows` are `(name, max abs error, max |reference|, kind)` with
        kind `"float32"`, `"bfloat16"`, `"bool"` or `"int"`; return
        `{name: "round-off" or "bug"}`. Use a relative budget of 1e-5 for float32 and 4e-2 for
        bfloat16 (about 5 ulps of its 2⁻⁷ ≈ 0.8 % precision).
        """
    )
    nb.exercise(
        "15.2",
        "judge each row of a parity error table",
        '''
        def verdict(rows):
            """rows: [(name, err, scale, kind)] -> {name: "round-off" | "bug"}."""
            ### BEGIN SOLUTION
            budget = {"float32": 1e-5, "bfloat16": 4e-2}
            out = {}
            for name, err, scale, kind in rows:
                if kind in ("bool", "int"):
                    ok = err == 0
                else:
                    ok = bool(np.isfinite(err)) and err <= budget[kind] * max(scale, np.finfo(np.float32).tiny)
                out[name] = "round-off" if ok else "bug"
            return out
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_verdict(verdict)")
    nb.hint(
        """
        Three rules: bool and int outputs must have error exactly 0; a NaN error is always a
        bug; a float error is round-off when `err <= budget[kind] * scale`.
        """
    )
    nb.md(
        """
        **What a real bug looks like.** A classic loader mistake: `kv_einsum/w` stacks keys and
        values along axis 1, and a loader that reads them in the wrong order swaps them. We make
        exactly that mistake in a copy of the reference and compare again:
        """
    )
    nb.code(
        """
        swapped = dict(ref)
        kv = "param/PaliGemma/llm/layers/attn/kv_einsum/w"
        swapped[kv] = ref[kv][:, ::-1].copy()                               # values where keys belong
        buggy = error_table(ref, check_pi0(swapped))
        show(buggy)
        bugs = [row[0] for row in buggy if classify_error(*row[1:]) == "bug"]
        assert "prefix_tokens" not in bugs and {"suffix_out", "v_t", "loss", "sample_actions"} <= set(bugs)
        """
    )
    nb.md(
        """
        The table localises the bug: everything computed *before* the transformer (prefix and
        suffix tokens, masks, positions, `x_t`, `u_t`) is still round-off; everything *after*
        the first attention layer is wrong by order 1. That is why the reference stores every
        intermediate and not just the final actions: the first wrong row points at the code to
        read.

        ## 4. Real checkpoints: orbax, bfloat16, file sizes

        openpi saves parameters with **orbax** in a checkpoint directory whose `params/`
        sub-directory holds the tree `{"params": {…the paths above…}}` (training checkpoints
        store NNX state and end every path with `/value`; `load_params` strips that).
        `pi0lite.openpi.save_orbax` writes the same layout, so we can make a small one
        ourselves and load it back the way a real `pi0_base` would load:
        """
    )
    nb.code(
        """
        with tempfile.TemporaryDirectory() as tmp:
            target = save_orbax(model, pathlib.Path(tmp) / "checkpoint")
            files = [p for p in target.rglob("*") if p.is_file()]
            print("wrote", target.relative_to(tmp), "|", len(files), "files,",
                  f"{sum(p.stat().st_size for p in files) / 1e6:.1f} MB on disk")
            restored = load_orbax(pathlib.Path(tmp) / "checkpoint")
        print(len(restored), "arrays restored; first paths:", sorted(restored)[:2])
        assert set(restored) == set(params)
        assert all(np.array_equal(restored[k], params[k]) for k in params)
        # a real checkpoint: model = Pi0(PI0, rngs=nnx.Rngs(0)); load_params(model, load_orbax(".../pi0_base"))
        """
    )
    nb.md(
        """
        **bfloat16.** The real checkpoints are trained and served in bfloat16: 8 exponent bits
        (float32's range) but only 8 significant bits, a relative precision of 2⁻⁸ ≈ 0.4 %.
        Rounding the weights to bfloat16 halves the file and changes every output by far more
        than float32 round-off. Judged with the float32 budget that looks like a bug; judged with
        the bfloat16 budget it is what bfloat16 costs. (Parity is therefore always checked in
        float32, as the reference files were written.)
        """
    )
    nb.code(
        """
        rounded = dict(ref)
        for k in params:
            rounded["param/" + k] = params[k].astype(jnp.bfloat16).astype(np.float32)  # NumPy knows bfloat16 (ml_dtypes)
        worst = max(float(np.max(np.abs(rounded["param/" + k] - v) / np.maximum(np.abs(v), 1e-30))) for k, v in params.items())
        print(f"largest relative change of a weight: {worst:.2e} (half a bfloat16 ulp: 2^-8 = {2.0 ** -8:.2e})")
        bf16_rows = check_pi0(rounded)
        as_f32, as_bf16 = error_table(ref, bf16_rows, "float32"), error_table(ref, bf16_rows, "bfloat16")
        for (name, err, scale, kind), row16 in zip(as_f32, as_bf16):
            if kind == "float32":
                print(f"{name:<15} relative error {err / scale:8.1e}   float32 budget: {classify_error(err, scale, kind):<9}"
                      f"   bfloat16 budget: {classify_error(*row16[1:])}")
        """
    )
    nb.md(
        """
        **How big are the real models?** Counting the parameters of the real configurations
        costs nothing: `nnx.eval_shape` builds the model abstractly, without memory.
        """
    )
    nb.code(
        """
        for name, config in [("pi0", PI0), ("pi0.5", PI05)]:
            abstract = nnx.eval_shape(lambda: Pi0(config, rngs=nnx.Rngs(0)))
            total = count_params(abstract)
            parts = {"vision tower": count_params(abstract.PaliGemma["img"]), "Gemma (both experts)": count_params(abstract.PaliGemma["llm"])}
            parts["projections"] = total - sum(parts.values())
            print(f"{name}: {total / 1e9:.2f} B parameters -> {total * 4 / 1e9:.1f} GB in float32, "
                  f"{total * 2 / 1e9:.1f} GB in bfloat16 |", ", ".join(f"{k} {v / 1e6:,.0f} M" for k, v in parts.items()))
        """
    )
    nb.summary(
        """
        * A parity reference file holds openpi's weights (`param/…` under openpi's paths), its
          inputs including the drawn noise and time (`in/…`) and every intermediate (`out/…`).
          `pi0lite.openpi.shared.shared_dir()` finds it (`PI0LITE_SHARED` or `../shared`).
        * `flatten_params` / `load_params` map openpi paths to pi0lite modules; loading refuses
          missing, unknown and mis-shaped arrays. `_1` marks the action expert; `layers/` arrays
          carry the layer axis first.
        * `check_pi0` (CLI: `python -m pi0lite.openpi check FILE.npz`) compares every output.
          Exact outputs must match exactly; float outputs agree to ~1e-6 relative, which is
          float32 round-off from a different order of operations
          (`pi0lite.openpi.roundoff.classify_error`). A real bug (swapped keys and values)
          shows up as order-1 errors from the first affected output on.
        * openpi checkpoints are orbax `params/` trees (`save_orbax` / `load_orbax`); bfloat16
          weights cost ≈ 0.4 % per weight and percent-level output changes; pi0 has ≈ 3.2 B
          parameters (≈ 6.5 GB in bfloat16).
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
