"""Builder of notebooks/12_scaling_pi0.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "12_scaling_pi0",
        "12 · Scaling pi0: a device mesh, FSDP, bfloat16, LoRA and memory",
        """
        The toy pi0 of notebook 09 fits on a laptop core. The real pi0 has **3.24 billion**
        parameters, and openpi says fine-tuning all of them needs more than 70 GB on one GPU.
        This notebook shows what openpi (and pi0lite) do about size, all with JAX's own machinery:

        * a **device mesh** with axes `("data", "fsdp")` and the **FSDP rule** that decides which
          device holds which slice of every parameter (`pi0lite.sharding`);
        * a **sharded train step** that gives the same numbers as one device;
        * **bfloat16** compute with float32 parameters;
        * **LoRA**: freeze the big matrices, train two thin ones beside each (`pi0lite.lora`);
        * the **memory table** of the real models (`python -m pi0lite.memory`) and what fits on
          which GPU.

        No GPU needed: the next cell asks XLA to split this CPU into 8 devices.
        """,
    )
    nb.md(
        """
        **Eight devices on one CPU.** The flag `--xla_force_host_platform_device_count=8` makes
        JAX's CPU backend present 8 devices. It must be set **before JAX starts** (before the
        first `import jax`), so this cell comes before the imports. Without a GPU or TPU, JAX then
        runs on these 8 CPU devices. With an accelerator the flag changes nothing for it; the
        cells below use the accelerator when it has 8 devices or more, the 8 CPU devices otherwise.
        """
    )
    nb.code(
        """
        import os, shutil, sys

        accelerator = shutil.which("nvidia-smi") is not None or os.path.exists("/dev/accel0")
        if "jax" in sys.modules:
            print("JAX is already running: restart the kernel to get 8 CPU devices")
        else:
            flags = os.environ.get("XLA_FLAGS", "")
            if "xla_force_host_platform_device_count" not in flags:  # only the CPU backend reads it
                os.environ["XLA_FLAGS"] = (flags + " --xla_force_host_platform_device_count=8").strip()
            if not accelerator:
                os.environ.setdefault("JAX_PLATFORMS", "cpu")
        """
    )
    nb.code(
        """
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite import lora, memory, sharding, train
        from pi0lite.config import PI0, TINY, lora_variant
        from pi0lite.course import checks, viz
        from pi0lite.pi0 import Pi0

        np.set_printoptions(precision=3, suppress=True)
        devices = jax.devices() if jax.device_count() >= 8 else jax.devices("cpu")
        devices = devices[:8]
        print("devices:", len(devices))
        assert len(devices) == 8
        """
    )
    nb.md(
        """
        ## 1. The mesh and who holds which shard

        A **mesh** arranges the devices in a grid with named axes. pi0lite (like openpi) uses two:
        `data × fsdp = devices`.

        * The **batch** is split over *both* axes: every device gets `batch / 8` examples.
        * Each large **parameter** is split over `fsdp` only and repeated along `data`. With
          `fsdp = 1` every device holds everything (plain data parallelism); with `data = 1`
          every parameter is cut in 8 (fully sharded data parallel, "ZeRO-3").

        Before a layer runs, XLA **all-gathers** the slices of its weights; after the backward
        pass it **reduce-scatters** the gradients so each device keeps only the gradient of its
        own slice. We never write those collectives: we only say where each array lives
        (`jax.sharding.NamedSharding`) and `jax.jit` inserts them.
        """
    )
    nb.code(
        """
        meshes = {fsdp: sharding.make_mesh(fsdp, devices) for fsdp in (2, 8)}
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [2.2, 8]})
        for ax, (fsdp, mesh) in zip(axes, meshes.items()):
            viz.plot_mesh(mesh.device_ids, axis_names=mesh.axis_names, ax=ax, title=f"mesh {dict(mesh.shape)}")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        **The FSDP rule** (`sharding.fsdp_spec`, the same as openpi's): keep an array whole
        (replicated) when the fsdp axis has size 1, when it is a scalar or a vector, or when it
        is smaller than 4 MiB (gathering many tiny arrays costs more than it saves). Otherwise
        split the **largest axis whose size the fsdp size divides**, and replicate if none does.

        Below, one 2048 × 1024 float32 weight (8 MiB) on both meshes. Each rectangle is one
        distinct slice, labelled with the devices that hold it.
        """
    )
    nb.code(
        """
        w = jnp.arange(2048 * 1024, dtype=jnp.float32).reshape(2048, 1024)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, (fsdp, mesh) in zip(axes, meshes.items()):
            placed = jax.device_put(w, sharding.state_shardings(w, mesh))
            index_map = {d.id: idx for d, idx in placed.sharding.devices_indices_map(w.shape).items()}
            viz.plot_shards(w.shape, index_map, ax=ax, title=f"fsdp {fsdp}: spec {placed.sharding.spec}")
            shard = placed.addressable_shards[0].data
            print(f"fsdp {fsdp}: each device holds {shard.shape}, {shard.nbytes / 2**20:.0f} MiB of 8 MiB")
            assert np.array_equal(np.asarray(placed), np.asarray(w))     # the same array, only spread out
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ### Exercise 12.1 — choose the FSDP axis of a parameter

        Write `fsdp_axis(shape, fsdp_size)`: the index of the axis to split, or `None` to keep
        the array whole. Assume the array is large (above 4 MiB) unless it is a vector. Split
        the **largest** axis that `fsdp_size` divides; ties go to the earlier axis. Replicating
        everything is always *correct* (every device can compute) but saves nothing, so the
        check rejects it.
        """
    )
    nb.exercise(
        "12.1",
        "choose the FSDP axis of a parameter",
        '''
        def fsdp_axis(shape, fsdp_size):
            """shape: tuple of ints; fsdp_size: devices on the fsdp axis -> axis index or None."""
            ### BEGIN SOLUTION
            if fsdp_size == 1 or len(shape) < 2:
                return None
            for axis in sorted(range(len(shape)), key=lambda i: (-shape[i], i)):
                if shape[axis] % fsdp_size == 0:
                    return axis
            return None
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_fsdp_axis(fsdp_axis)")
    nb.hint(
        """
        Sort the axes by size, largest first (`sorted(range(len(shape)), key=lambda i: -shape[i])`),
        and return the first whose size `% fsdp_size == 0`. Vectors and `fsdp_size == 1`: `None`.
        """
    )
    nb.md(
        """
        Applied to the **real pi0** (built with `nnx.eval_shape`: shapes only, nothing allocated),
        the rule splits the big matrices and leaves thousands of small vectors whole. The
        parameters per device drop almost 8-fold:
        """
    )
    nb.code(
        """
        abstract = nnx.eval_shape(lambda: Pi0(PI0, rngs=nnx.Rngs(0)))
        leaves = jax.tree.leaves(nnx.state(abstract, nnx.Param))
        total = sum(x.size * 4 for x in leaves)
        per_device, n_split = 0, 0
        for x in leaves:
            spec = sharding.fsdp_spec(x.shape, 4, 8)
            n_split += spec != jax.sharding.PartitionSpec()
            per_device += x.size * 4 / (8 if spec != jax.sharding.PartitionSpec() else 1)
        print(f"pi0: {len(leaves)} parameter arrays, {n_split} split over fsdp = 8")
        print(f"float32 parameters: {total / 1e9:.2f} GB in all, {per_device / 1e9:.2f} GB per device")
        assert n_split > 10 and per_device < total / 7.5
        """
    )
    nb.md(
        """
        ## 2. Sharded = one device

        `sharding.sharded_jit(step, mesh, state_shardings)` is `jax.jit` with explicit input and
        output shardings (parameters and AdamW's moments by the FSDP rule — a moment has its
        parameter's shape, so it gets its parameter's sharding — and the batch over both axes),
        and it **donates** the old state, so XLA writes the new state into the same buffers.

        The test: three AdamW steps of a small pi0 (`train.MICRO`) on one device and on the
        (4, 2) mesh, with the same batches. (`min_shard_bytes` is lowered so that this small
        model's matrices are really cut; `tests/test_sharding.py` runs the (8, 1), (4, 2) and
        (1, 8) meshes.)
        """
    )
    nb.code(
        """
        graphdef, state0 = train.init_state(train.MICRO, seed=0, lr=1e-3, eps=1e-4)
        host0 = jax.tree.map(np.asarray, state0)
        step = train.make_train_step(graphdef)
        batches = [train.synthetic_rows(train.MICRO, np.arange(16), i) for i in range(3)]


        def three_steps(mesh):
            shardings = sharding.state_shardings(host0, mesh, min_bytes=2048)
            state = train.place_state(host0, shardings)
            fn = sharding.sharded_jit(step, mesh, shardings, num_args=2)
            losses = []
            for b in batches:
                state, metrics = fn(state, jax.device_put(b, sharding.batch_sharding(mesh)))
                losses.append(float(metrics["loss"]))
            return losses, state


        with jax.default_matmul_precision("highest"):
            one_losses, one_state = three_steps(sharding.make_mesh(1, devices[:1]))
            mesh_losses, mesh_state = three_steps(meshes[2])
        param_err = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                        for a, b in zip(jax.tree.leaves(one_state), jax.tree.leaves(mesh_state)))
        print("losses, one device:", np.round(one_losses, 4))
        print("losses, (4, 2) mesh:", np.round(mesh_losses, 4))
        print("largest parameter difference below 1e-5:", param_err < 1e-5)
        assert max(abs(a - b) for a, b in zip(one_losses, mesh_losses)) < 1e-5 and param_err < 1e-5
        """
    )
    nb.md(
        """
        Equal to round-off: FSDP changes where numbers live and the order of some sums, not the
        maths. The same `sharded_jit` runs across several **processes** or hosts: each process
        calls `jax.distributed.initialize(coordinator, num_processes, process_id)`, the mesh
        spans every process's devices, and each process builds only its own rows of the batch
        (`python -m pi0lite.train --coordinator HOST:PORT --num-processes N --process-id I`;
        the README shows the two-host command).

        ## 3. bfloat16: half the bytes, float32's range

        bfloat16 keeps float32's 8 exponent bits and only 8 significant bits (about 2–3 decimal
        digits). openpi runs pi0's matmuls in bfloat16; pi0lite's `Pi0Config(dtype="bfloat16")`
        does the same while keeping the **parameters and optimiser state in float32** and the
        numerically touchy parts — RMSNorm statistics, softmax, the loss — in float32.
        """
    )
    nb.code(
        """
        print("1 + 2**-8 in bfloat16:", float(jnp.bfloat16(1) + jnp.bfloat16(2**-8)), "| in float32:", 1 + 2**-8)
        print("largest bfloat16:", f"{float(jnp.finfo(jnp.bfloat16).max):.2e}",
              "| largest float16:", f"{float(jnp.finfo(jnp.float16).max):.0f}")

        m32 = Pi0(TINY, rngs=nnx.Rngs(0))
        m16 = Pi0(TINY.replace(dtype="bfloat16"), rngs=nnx.Rngs(1))
        nnx.update(m16, nnx.state(m32))                                      # the same float32 weights
        b = train.synthetic_rows(TINY, np.arange(4), 0)
        obs = train.batch_observation(TINY, b)
        loss = {name: float(jnp.mean(nnx.jit(lambda m, o: m.compute_loss(jax.random.key(0), o, b["actions"],
                                                                          noise=b["noise"], time=b["time"]))(m, obs)))
                for name, m in {"float32": m32, "bfloat16": m16}.items()}
        rel = abs(loss["bfloat16"] - loss["float32"]) / loss["float32"]
        print(f"TINY loss, float32 {loss['float32']:.4f} | bfloat16 compute {loss['bfloat16']:.4f} | relative gap < 2 %:", rel < 0.02)
        assert rel < 0.02
        """
    )
    nb.md(
        """
        ## 4. LoRA: train two thin matrices beside each frozen one

        For a frozen weight $W$ ($d_\\text{in} \\times d_\\text{out}$), LoRA adds
        $\\Delta W = A B \\cdot \\alpha / r$ with $A$ ($d_\\text{in} \\times r$) and $B$
        ($r \\times d_\\text{out}$), rank $r \\ll d$. Only $A$ and $B$ are trained:
        $r(d_\\text{in} + d_\\text{out})$ numbers instead of $d_\\text{in} d_\\text{out}$. The
        einsum is never merged during training; the LoRA path runs beside it:
        $y = xW + (xA)B \\cdot \\alpha/r$. openpi's names are `lora_a` and `lora_b`; its presets
        are rank 16, α 16 for Gemma-2B (`gemma_2b_lora`) and rank 32, α 32 for the 300 M action
        expert (`gemma_300m_lora`), on the attention and the feed-forward einsums.
        """
    )
    nb.code(
        """
        rng = np.random.default_rng(0)
        d_in, d_out, r = 64, 48, 4
        w_demo = rng.normal(0, 1, (d_in, d_out))
        a_demo, b_demo = rng.normal(0, 1, (d_in, r)), rng.normal(0, 1, (r, d_out))
        viz.plot_lora(w_demo, a_demo, b_demo, scale=1.0, title="a rank-4 update of a 64 × 48 weight")
        plt.show()
        delta = a_demo @ b_demo
        print("rank of ΔW:", np.linalg.matrix_rank(delta), f"| trainable: {r * (d_in + d_out)} numbers instead of {d_in * d_out}")
        assert np.linalg.matrix_rank(delta) == r
        """
    )
    nb.md(
        """
        ### Exercise 12.2 — the query projection with LoRA

        pi0's query projection is the einsum `btd,ndh->btnh` (batch, tokens, width → heads,
        head dim) with `w` of shape `[n, d, h]`. Its LoRA factors keep the head axis:
        `a` is `[n, d, r]`, `b` is `[n, r, h]`. Return the base einsum plus the LoRA path scaled
        by `alpha / rank`.
        """
    )
    nb.exercise(
        "12.2",
        "the q projection with its LoRA path",
        '''
        def lora_q(x, w, a, b, alpha, rank):
            """x [b, t, d], w [n, d, h], a [n, d, r], b [n, r, h] -> [b, t, n, h]."""
            ### BEGIN SOLUTION
            base = jnp.einsum("btd,ndh->btnh", x, w)
            low_rank = jnp.einsum("btnr,nrh->btnh", jnp.einsum("btd,ndr->btnr", x, a), b)
            return base + low_rank * (alpha / rank)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_lora_q(lora_q)")
    nb.hint(
        """
        Two einsums for the path: `btd,ndr->btnr` (every head has its own `A`), then
        `btnr,nrh->btnh`. Multiply the path (not the base) by `alpha / rank`.
        """
    )
    nb.md(
        """
        **Which parameters train.** openpi's freeze filter (`lora.trainable_filter`): with LoRA on
        both Gemma experts, every `llm` weight is frozen except the LoRA factors; SigLIP and the
        action projections still train. `nnx.Optimizer(model, tx, wrt=lora.trainable_filter(config))`
        then keeps AdamW's two moments only for those. Counted on the real pi0 (shapes only):
        """
    )
    nb.code(
        """
        full_total, _ = memory.param_counts(PI0)
        lora_total, lora_trainable = memory.param_counts(lora_variant(PI0))
        print(f"pi0:        {full_total:>13,} parameters, all trainable")
        print(f"pi0 + LoRA: {lora_total:>13,} parameters, {lora_trainable:,} trainable "
              f"({lora_trainable / lora_total:.1%}; SigLIP alone is ~412 M of them)")
        assert lora_total - full_total == 49_987_584 and lora_trainable == 468_039_440
        """
    )
    nb.md(
        """
        **LoRA on the toy: a new word.** `python -m pi0lite.toy.lora_finetune` appends the word
        "crimson" to the shipped toy policy's tokenizer and teaches it that crimson means red by
        training **only** rank-4 LoRA factors on the VLM expert (the embedding row of the new word
        stays frozen and random: the factors must learn to read it). Its filter `LORA_ONLY` is
        stricter than openpi's. Measured (README, 200 scenes with the goal red, 300 steps): "go to
        the crimson square" succeeded in 22.5 % of the episodes before and 90.0 % after, while "go
        to the red square" stayed at 97.5 % → 96.5 %.
        """
    )
    nb.code(
        """
        from pi0lite.toy import lora_finetune
        from pi0lite.toy.policy import load_shipped

        toy_lora = lora_finetune.with_lora(load_shipped("flow"), lora_finetune.FinetuneConfig())
        count = lambda f: sum(x.size for x in jax.tree.leaves(nnx.state(toy_lora.model, f)))
        print(f"toy pi0 + rank-4 LoRA on the VLM expert: {count(nnx.Param):,} parameters, "
              f"{count(lora_finetune.LORA_ONLY):,} trained")
        assert count(lora_finetune.LORA_ONLY) == 22_016
        """
    )
    nb.md(
        """
        ## 5. Memory: what fits on which GPU

        `python -m pi0lite.memory` compiles the real jitted functions ahead of time on abstract
        inputs (`jax.ShapeDtypeStruct`, nothing allocated) for FSDP 1, 2, 4 and 8 and reads
        XLA's buffer assignment: arguments + outputs − donated + temporaries, per device. Beside
        it, a closed form: parameters + gradients + optimiser state (+ EMA) + activations, with
        per-layer **remat** (recompute each layer's activations in the backward pass, as openpi
        does). Compiling all 24 cells takes over an hour on a busy 2-core CPU, so the table of
        that run ships with the package (`memory.shipped_plan()`).

        Training is batch 32 with AdamW; "full" keeps openpi's EMA copy of the parameters;
        "lora" stores the frozen weights in bfloat16 without optimiser state; "inference" is
        batch 1, 10 Euler steps with the KV cache, bfloat16 weights.
        """
    )
    nb.code(
        """
        plan = memory.shipped_plan()
        print("GB per device, XLA / closed form          FSDP 1        FSDP 2        FSDP 4        FSDP 8   openpi (1 GPU)")
        for model, modes in plan.items():
            for mode, by_f in modes.items():
                cells = "".join(f"{c['xla_gb']:7.1f} /{c['estimate_gb']:5.1f}" for c in by_f.values())
                print(f"{model:5s} {mode:10s}{cells}   > {memory.OPENPI_GB[mode]:g} GB")
        gpus = {"RTX 4090": 24, "A100 40 GB": 40, "A100 / H100 80 GB": 80}
        viz.plot_memory({mode: {f: c["xla_gb"] for f, c in by_f.items()} for mode, by_f in plan["PI0"].items()},
                        gpus=gpus, title="pi0, XLA's compiled memory per device")
        plt.show()
        for mode, by_f in plan["PI0"].items():
            fits = {g: next((f for f, c in by_f.items() if c["xla_gb"] < gb), None) for g, gb in gpus.items()}
            print(f"pi0 {mode:9s}: smallest FSDP size that fits:",
                  ", ".join(f"{g} {'FSDP ' + str(f) if f else 'not with 8'}" for g, f in fits.items()))
        assert plan["PI0"]["full"][8]["xla_gb"] < 24
        """
    )
    nb.md(
        """
        How to read it:

        * **Full fine-tuning** on one device: XLA says 90 GB, the closed form 80 GB, openpi
          "> 70 GB". Each parameter costs 20 bytes (float32 weight 4, gradient 4, AdamW's two
          moments 8, EMA 4): 65 GB for 3.24 B parameters, plus activations. With FSDP 8 it is
          12 GB per device: it fits a 24 GB GPU.
        * **LoRA** cuts gradients and optimiser state to the 468 M trainable parameters and
          stores the frozen 2.8 B in bfloat16.
        * XLA:CPU has no bfloat16 matmul: it converts bfloat16 weights to float32 copies, which is
          why its inference and LoRA numbers sit well above the closed form. A GPU keeps them in
          bfloat16 (and needs its own CUDA context and allocator slack on top).
        * **Remat** matters most: without it the same full step needs 463 GB of temporaries
          instead of 38 GB (every layer's activations kept for the backward pass).

        ### Exercise 12.3 — the memory of a full fine-tune, by hand

        Write `full_finetune_gb(n_params, fsdp, activations_gb)`: GB (1e9 bytes) per device of
        a full fine-tune with AdamW and an EMA copy, float32 everywhere, with the parameter-sized
        arrays split over `fsdp` devices and the given activations per device. The check
        compares you with the planner's closed form (within 10 %).
        """
    )
    nb.exercise(
        "12.3",
        "estimate the memory of a full fine-tune",
        '''
        def full_finetune_gb(n_params, fsdp, activations_gb):
            """n_params: parameter count; fsdp: devices sharing them; activations_gb: per device -> GB per device."""
            ### BEGIN SOLUTION
            bytes_per_param = 4 + 4 + 8 + 4  # weight, gradient, AdamW mu + nu, EMA
            return bytes_per_param * n_params / fsdp / 1e9 + activations_gb
            ### END SOLUTION
        ''',
    )
    nb.check(
        """
        activations = {f: memory.estimate("PI0", "full", f)["activations"] / 1e9 for f in memory.FSDP_SIZES}
        planner = {f: c["estimate_gb"] for f, c in plan["PI0"]["full"].items()}
        checks.check_full_finetune_gb(full_finetune_gb, planner, full_total, activations)
        """
    )
    nb.hint(
        """
        Count bytes per parameter: a float32 weight (4), its gradient (4), AdamW's `mu` and `nu`
        (4 + 4) and the EMA copy (4). Divide the parameter-sized part by `fsdp`, then add the
        activations. GB here is 1e9 bytes.
        """
    )
    nb.summary(
        """
        * A mesh `("data", "fsdp")` from `jax.make_mesh`: the batch is split over both axes, each
          large parameter over `fsdp` (its largest axis the fsdp size divides; small arrays and
          vectors stay whole). AdamW's moments follow their parameter.
        * `sharding.sharded_jit` = `jax.jit` with explicit shardings and a donated state; XLA
          adds the all-gathers and reduce-scatters. Sharded and single-device steps agree to
          round-off; the same code runs across processes with `jax.distributed`.
        * bfloat16 compute halves activation bytes; parameters, optimiser state, norms, softmax
          and the loss stay float32.
        * LoRA: `y = xW + (xA)B·α/r`; pi0 + openpi's LoRA presets trains 468 M of 3.29 B
          parameters.
        * Full fine-tuning costs ~20 bytes per parameter plus activations: 80–90 GB on one
          device, 10–12 GB per device with FSDP 8.

        Next: **13 · pi0 in Meta-World**.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
