"""Builder of notebooks/14_vision_tower.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "14_vision_tower",
        "14 · The vision tower: how pi0 turns a camera image into tokens",
        """
        Notebook 01 said "every camera image is cut into patches, one token per patch" and moved
        on. This notebook opens that box: the **SigLIP** vision transformer that pi0 inherits from
        PaliGemma (`pi0lite.vision.SigLIP`, openpi's `PaliGemma/img` parameters).

        * **patches → tokens**: a linear map of each non-overlapping patch, which is a
          convolution with stride = patch size;
        * **learned positions**: one trained vector per patch slot;
        * **pre-LN transformer blocks**, a final LayerNorm and the **head** into the LLM width;
        * what a **trained** tower looks at: the shipped toy policy's attention maps;
        * the **token budget**: 256 tokens per 224-pixel camera, and what that costs.
        """,
    )
    nb.code(
        """
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite.config import PI0, SIGLIP_SO400M_14, VisionConfig
        from pi0lite.course import checks, viz
        from pi0lite.params import count_params
        from pi0lite.toy import render as toy_render, scene as toy_scene
        from pi0lite.toy.policy import load_shipped
        from pi0lite.vision import SigLIP, embed_patches

        np.set_printoptions(precision=3, suppress=True)
        """
    )
    nb.md(
        """
        ## 1. The tower in numbers

        pi0 uses SigLIP **So400m/14**: 224×224 images, 14×14-pixel patches, width 1152, 27
        blocks, 16 heads, MLP 4304. Its output goes through one Dense layer, the **head**, into
        the width of the language model (2048 for Gemma-2B), so image tokens and word tokens can
        sit in one sequence. `nnx.eval_shape` builds the tower without allocating it, so we can
        count its parameters on any laptop.
        """
    )
    nb.code(
        """
        cfg = SIGLIP_SO400M_14
        print(cfg)
        print("patches per side:", cfg.image_size // cfg.patch_size, "| tokens per image:", cfg.num_patches)
        abstract = nnx.eval_shape(lambda: SigLIP(cfg, PI0.paligemma.width, rngs=nnx.Rngs(0)))
        n_tower = count_params(abstract)
        n_head = count_params(abstract.head)
        print(f"SigLIP So400m/14: {n_tower / 1e6:.1f} M parameters, of which the head into width "
              f"{PI0.paligemma.width}: {n_head / 1e6:.2f} M")
        assert cfg.num_patches == 256 and 400e6 < n_tower < 430e6
        """
    )
    nb.md(
        """
        The whole forward pass, `SigLIP.__call__`, is five lines:

        $$x_0 = \\text{embed\\_patches}(\\text{image}) + P, \\qquad
        x_{\\ell+1} = x_\\ell' + \\text{MLP}(\\text{LN}(x_\\ell')),\\quad
        x_\\ell' = x_\\ell + \\text{MHA}(\\text{LN}(x_\\ell)),$$
        $$\\text{tokens} = \\text{LN}(x_L)\\, W_\\text{head} + b_\\text{head}.$$

        Each block is **pre-LN**: the LayerNorm sits *inside* the residual branch, so the residual
        stream $x$ itself is never normalised until the end (the same design as Gemma's RMSNorm
        blocks in notebook 03, with LayerNorm and biases instead). The MLP uses tanh-GELU. pi0
        keeps all 256 tokens (no pooling) and never drops the head.

        We work with the **toy policy** shipped with pi0lite (`make demo` trained it): its tower
        sees 32×32 images in 8×8 patches (16 tokens), width 32, one block, two heads.
        """
    )
    nb.code(
        """
        policy = load_shipped("flow")
        tower = policy.model.PaliGemma["img"]
        print(tower.cfg)
        scenes = toy_scene.sample_scenes(np.random.default_rng(4), 4)
        images_u8 = toy_render.render(scenes, scenes.start, tower.cfg.image_size)   # [4, 32, 32, 3] uint8
        images = jnp.asarray(images_u8, jnp.float32) / 255.0 * 2.0 - 1.0             # pi0's input range [-1, 1]
        fig, axes = plt.subplots(1, 2, figsize=(8, 4))
        viz.plot_observation(images_u8[0], ax=axes[0], title=scenes.instructions[0])
        viz.plot_image_patches(images_u8[0], tower.cfg.patch_size, ax=axes[1])
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ## 2. Patches → tokens: a convolution with stride = patch

        Cut the $S \\times S$ image into $(S/q)^2$ squares of $q \\times q$ pixels. Flatten each
        square to $q \\cdot q \\cdot 3$ numbers and multiply by one matrix (plus a bias): that is
        the patch embedding. Because the squares do not overlap, it is exactly a convolution
        whose kernel is $q \\times q$ and whose stride is $q$. openpi stores the kernel in the
        convolution layout `[q, q, 3, width]` (height, width, in, out: "HWIO") under
        `img/embedding/kernel`. Tokens are numbered **row-major**: patch (row $r$, column $c$)
        is token $r \\cdot S/q + c$, as the numbers in the grid above show.

        ### Exercise 14.1 — patchify and embed

        Write `patch_embed(images, kernel, bias)` without a convolution: rearrange the images
        into patches (`einops.rearrange` with the pattern
        `"b (r q1) (c q2) ch -> b (r c) (q1 q2 ch)"` is one line), flatten the kernel to match,
        multiply, add the bias. The check compares you with `pi0lite.vision.embed_patches`
        (the convolution).
        """
    )
    nb.exercise(
        "14.1",
        "cut images into patches and embed them linearly",
        '''
        import einops


        def patch_embed(images, kernel, bias):
            """images [b, S, S, 3], kernel [q, q, 3, w], bias [w] -> tokens [b, (S/q)², w], row-major."""
            ### BEGIN SOLUTION
            q = kernel.shape[0]
            patches = einops.rearrange(images, "b (r q1) (c q2) ch -> b (r c) (q1 q2 ch)", q1=q, q2=q)
            return patches @ kernel.reshape(-1, kernel.shape[-1]) + bias
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_patch_embed(patch_embed)")
    nb.hint(
        """
        The flattened patch must list its numbers in the same order as the kernel's first three
        axes: pixel row, pixel column, channel. `kernel.reshape(q * q * 3, w)` flattens the kernel
        in exactly that order, so the patch pattern ends in `(q1 q2 ch)`. The grid axes `(r c)`
        give row-major tokens.
        """
    )
    nb.md(
        """
        From here on we use the package's `embed_patches` (the convolution). Add the **learned
        position embedding** `pos_embedding` (`[1, tokens, width]`, one trained vector per patch
        slot), run the blocks (`tower.Transformer`: the blocks and the final LayerNorm), apply
        the head, and we have rebuilt the tower's output from its parts:
        """
    )
    nb.code(
        """
        x0 = embed_patches(images, tower.embedding.kernel[...], tower.embedding.bias[...]) + tower.pos_embedding[...]
        normed = tower.Transformer(x0)                              # 1 pre-LN block + final LayerNorm
        tokens = normed @ tower.head.kernel[...] + tower.head.bias[...]
        print("patch tokens:", x0.shape, "-> tokens for the LLM:", tokens.shape,
              "| LLM width:", policy.config.paligemma.width)
        np.testing.assert_allclose(tokens, tower(images), atol=1e-5)
        """
    )
    nb.md(
        """
        **Why positions must be learned (or given).** Attention is permutation-equivariant:
        shuffle the patches and every token comes out the same, only shuffled. Without
        `pos_embedding` the tower could not tell a square in the top-left corner from one in the
        bottom-right. The vectors start random and training shapes them; in big ViTs, neighbouring
        slots end up with clearly similar vectors (the 2-D layout learnt from data alone). Our
        tiny tower shows only a trace of that: below, the cosine similarity of each slot's
        position vector to four chosen slots (outlined), and the average over grid neighbours
        versus all other pairs.
        """
    )
    nb.code(
        """
        pos = np.asarray(tower.pos_embedding[...])[0]                       # [16, 32]
        pos = pos / np.linalg.norm(pos, axis=1, keepdims=True)
        similarity = pos @ pos.T                                            # [16, 16]
        side = tower.cfg.image_size // tower.cfg.patch_size
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
        for ax, slot in zip(axes, [0, 5, 10, 15]):
            viz.plot_patch_map(similarity[slot].reshape(side, side), mark=slot, ax=ax, vmin=-1, vmax=1,
                               cmap="RdBu_r", title=f"similarity to slot {slot}")
        fig.tight_layout()
        plt.show()
        print("mean similarity of grid neighbours:", round(float(np.mean([similarity[i, i + 1] for i in range(15) if (i + 1) % side])), 2),
              "| of all other pairs:", round(float((similarity.sum() - 16) / (16 * 15)), 2))
        """
    )
    nb.md(
        """
        ## 3. What the trained tower looks at

        `SigLIP(images, record_attention=True)` *sows* each layer's attention probabilities
        `[b, heads, query, key]`, which `nnx.capture` collects (the same hook as Gemma's in
        notebook 03). The toy tower has one layer, so there is nothing to "roll out" across
        layers: the map *is* the layer's attention. (With several layers, **attention rollout**
        multiplies the per-layer maps, each averaged over heads and mixed with the identity for
        the residual path, $\\tilde A_\\ell = \\tfrac12(A_\\ell + I)$, to follow where information
        came from.) We summarise each head by how much attention each patch **receives** (the
        column mean over all queries).
        """
    )
    nb.code(
        """
        out, recorded = nnx.capture(tower, nnx.Intermediate)(images, record_attention=True)
        probs = nnx.to_pure_dict(recorded)["Transformer"]["encoderblock"]["MultiHeadDotProductAttention_0"]["attn_probs"]
        probs = np.asarray(probs[0])                                        # layer 0: [4 images, 2 heads, 16, 16]
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(out, tower(images), atol=1e-6)           # recording changes nothing
        received = probs.mean(axis=2)                                       # [images, heads, keys]

        fig, axes = plt.subplots(2, 3, figsize=(12.5, 7))
        for row, i in enumerate([0, 1]):
            viz.plot_observation(images_u8[i], ax=axes[row, 0], title=scenes.instructions[i])
            for head in (0, 1):
                viz.plot_patch_map(received[i, head].reshape(side, side), image=images_u8[i], ax=axes[row, head + 1],
                                   vmin=0, title=f"head {head}: attention received")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        Each head puts most of its attention on **one patch**: head 1 on patch 0 (the top-left
        corner), head 0 on patch 3 (the top-right corner). Squares often sit there, so it is
        tempting to say "the tower looks at the squares". **Test that before believing it**: run
        the same tower on 64 scenes, on *blank* images (background colour only) and on the
        scenes flipped upside down (squares at the bottom), and count which patch each head
        attends to most.
        """
    )
    nb.code(
        """
        many = toy_scene.sample_scenes(np.random.default_rng(5), 64)
        real = toy_render.render(many, many.start, tower.cfg.image_size).astype(np.float32) / 255.0 * 2.0 - 1.0
        controls = {"64 scenes": real, "blank": np.broadcast_to(real[:, :1, :1], real.shape), "flipped": real[:, ::-1]}
        attend = nnx.jit(lambda t, x: nnx.capture(t, nnx.Intermediate)(x, record_attention=True)[1])
        favourite = {}
        for name, batch in controls.items():
            rec = nnx.to_pure_dict(attend(tower, jnp.asarray(batch)))
            r = np.asarray(rec["Transformer"]["encoderblock"]["MultiHeadDotProductAttention_0"]["attn_probs"][0]).mean(2)
            top = [np.bincount(r[:, h].argmax(-1), minlength=side * side) for h in (0, 1)]
            print(f"{name:>9}: head 0's favourite patch {top[0].argmax():2d} in {top[0].max():2d}/64 images,"
                  f" head 1's patch {top[1].argmax():2d} in {top[1].max():2d}/64 | head 1's share on it {r[:, 1, 0].mean():.2f}")
            favourite[name] = (int(top[0].argmax()), int(top[1].argmax()))
        assert len(set(favourite.values())) == 1                            # the same patches with or without objects
        """
    )
    nb.md(
        """
        The same two patches win on blank and on flipped images: these maps are set by
        **position**, not by content. Both heads are **attention sinks**: a fixed place to put
        attention when a head has little to add (softmax must put its weight somewhere; large
        vision transformers grow such sinks too). A head that always reads the same patch adds
        nearly the same vector to every token, a learned constant; each token's own content
        travels on through the residual path ($x + \\text{MHA}(\\ldots)$). For a 16-token
        toy image, a tower that works patch by patch is enough: the language model downstream
        combines the patches with the prompt.

        The lesson carries over to real models: an attention map is a hypothesis, and blank or
        shuffled inputs are the cheap control that tests it.

        ## 4. The token budget

        openpi resizes every camera image (keeping its aspect ratio, padding the rest) to
        224×224 before the tower, so **a camera costs (224/14)² = 256 tokens whatever its
        resolution**. pi0 has three camera slots (`base_0_rgb`, `left_wrist_0_rgb`,
        `right_wrist_0_rgb`). A robot without a wrist camera still fills that slot with a
        zero image whose `input_mask` is False: the 256 tokens are in the sequence (they cost
        compute and memory) but no query attends to them.

        ### Exercise 14.2 — count the image tokens of a camera set-up

        `cameras` maps each camera slot of the model to the raw `(height, width)` of its image,
        or `None` if the robot has no such camera. Return `(slots, valid)`: how many image tokens
        the prefix holds, and how many of them are real (input_mask True).
        """
    )
    nb.exercise(
        "14.2",
        "image-token slots and valid tokens of a camera set-up",
        '''
        def image_token_slots(cameras, image_size=224, patch_size=14):
            """cameras: {slot name: (height, width) or None} -> (slots, valid) image tokens."""
            ### BEGIN SOLUTION
            per_camera = (image_size // patch_size) ** 2
            present = sum(size is not None for size in cameras.values())
            return per_camera * len(cameras), per_camera * present
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_image_token_slots(image_token_slots)")
    nb.hint(
        """
        The raw resolution never matters (everything is resized to `image_size`). Every slot
        costs `(image_size // patch_size) ** 2` tokens; only cameras that exist are valid.
        """
    )
    nb.md(
        """
        Put together with the prompt (48 tokens in pi0, 200 in pi0.5), the images dominate the
        prefix. Attention over the prefix costs $\\propto n^2$, so a third camera costs more than
        a third more compute; the prefix runs once per action chunk (its keys and values are
        cached for the 10 flow steps, notebook 06).
        """
    )
    nb.code(
        """
        per_camera = PI0.vision.num_patches
        setups = {
            "pi0: 3 cameras": {"camera 1": per_camera, "camera 2": per_camera, "camera 3": per_camera, "prompt": PI0.max_token_len},
            "pi0: 1 camera + 2 empty": {"camera 1": per_camera, "empty slot": 2 * per_camera, "prompt": PI0.max_token_len},
            "pi0.5: 3 cameras": {"camera 1": per_camera, "camera 2": per_camera, "camera 3": per_camera, "prompt": 200},
            "toy policy": {"camera 1": tower.cfg.num_patches, "prompt": policy.config.max_token_len},
        }
        viz.plot_token_budget(setups, title="prefix tokens per set-up")
        plt.show()
        n = PI0.prefix_len
        print("pi0 prefix:", n, "tokens =", len(PI0.image_keys), "x", per_camera, "+", PI0.max_token_len,
              f"| image share {len(PI0.image_keys) * per_camera / n:.0%} | attention matrix per head: {n * n:,} entries")
        assert n == 816
        """
    )
    nb.summary(
        """
        * `pi0lite.vision.SigLIP`: `embed_patches` (a conv with stride = patch, HWIO kernel,
          row-major tokens) + learned `pos_embedding` → pre-LN blocks (LayerNorm, MHA, tanh-GELU
          MLP) → final LayerNorm → `head` Dense into the LLM width. So400m/14 has ≈ 412 M
          parameters and gives 256 tokens per 224-px camera.
        * Position vectors are learned (attention alone cannot tell where a patch was).
        * `SigLIP(images, record_attention=True)` under `nnx.capture` exposes attention
          probabilities. Both heads of the toy tower are position-driven attention sinks (the
          blank and flipped-image controls show it): check attention maps before reading them.
        * Every camera slot costs (image_size/patch)² tokens whether or not the camera exists;
          images are ≈ 94 % of pi0's 816-token prefix.

        Next: **15 · openpi weights and parity**, how we know all of this equals openpi.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
