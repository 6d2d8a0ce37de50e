"""A SigLIP-style vision transformer (openpi's ``PaliGemma/img`` tree).

Axis letters (legend in :mod:`pi0lite`): b batch · y, x pixel rows/columns (colour: the literal 3) ·
i image tokens (patches) · t, s the same tokens as queries / keys · w tower width · n heads ·
h head dim · m MLP hidden size · d output (LLM) width · l layers · ``patch`` the patch side in pixels.

patch conv (with bias) → + learned position embedding → depth × pre-LN blocks
(``x + MHA(LN(x))``, ``x + MLP(LN(x))``, tanh-GELU MLP) → final LayerNorm → ``head`` Dense to the
LLM width. All image tokens are kept (no pooling). Block weights carry a leading depth axis.
With ``record_attention=True`` every layer sows its attention probabilities ``[b, n, p, p]``
under ``attn_probs`` (read them with ``nnx.capture``, as notebook 14_vision_tower does).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from pi0lite.config import VisionConfig
from pi0lite.init import fan_in_normal
from pi0lite.remat import LayerIndex, run_layers

LN_EPS = 1e-6


def layer_norm(x: Float[Array, "... w"], scale, bias) -> Float[Array, "... w"]:
    """LayerNorm over the last axis (eps 1e-6), statistics in float32."""
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
    return ((x32 - mean) * jax.lax.rsqrt(var + LN_EPS) * scale + bias).astype(x.dtype)


def embed_patches(
    images: Float[ArrayLike, "b y x 3"], kernel: Float[ArrayLike, "patch patch 3 w"], bias: Float[ArrayLike, " w"]
) -> Float[Array, "b i w"]:
    """Cut images into non-overlapping ``patch × patch`` squares and map each linearly to ``w`` numbers.

    That is a convolution with stride = kernel size = the patch side (``kernel`` in HWIO layout,
    openpi's ``img/embedding/kernel``). Tokens come out row-major: with ``G = S / patch`` patches
    per side, grid cell (row ``r``, column ``x``) is token ``r · G + x``. Introduced in
    14_vision_tower.
    """
    side = kernel.shape[0]
    x = jax.lax.conv_general_dilated(
        images.astype(jnp.float32), kernel, window_strides=(side, side), padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    ) + bias  # [b, G, G, w]
    return x.reshape(x.shape[0], -1, x.shape[-1])


class Dense(nnx.Module):
    """``kernel`` and ``bias`` of arbitrary (possibly depth-stacked) shapes."""

    def __init__(self, kernel_shape, bias_shape, fan_in: int, *, rngs: nnx.Rngs):
        self.kernel = fan_in_normal(rngs, kernel_shape, fan_in)
        self.bias = nnx.Param(jnp.zeros(bias_shape, jnp.float32))


class LayerNorm(nnx.Module):
    def __init__(self, shape):
        self.scale = nnx.Param(jnp.ones(shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros(shape, jnp.float32))


class MultiHeadAttention(nnx.Module):
    def __init__(self, depth, width, heads, *, rngs):
        hd = width // heads
        self.query = Dense((depth, width, heads, hd), (depth, heads, hd), width, rngs=rngs)
        self.key = Dense((depth, width, heads, hd), (depth, heads, hd), width, rngs=rngs)
        self.value = Dense((depth, width, heads, hd), (depth, heads, hd), width, rngs=rngs)
        self.out = Dense((depth, heads, hd, width), (depth, width), width, rngs=rngs)

    def __call__(self, x: Float[Array, "b i w"], layer: LayerIndex, record: bool = False) -> Float[Array, "b i w"]:
        def proj(dense: Dense):
            return jnp.einsum("biw,wnh->binh", x, dense.kernel[layer]) + dense.bias[layer]

        q, k, v = proj(self.query), proj(self.key), proj(self.value)
        q = q / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
        probs = jax.nn.softmax(jnp.einsum("btnh,bsnh->bnts", q, k).astype(jnp.float32), axis=-1)
        if record:
            self.sow(nnx.Intermediate, "attn_probs", probs)
        out = jnp.einsum("bnts,bsnh->btnh", probs.astype(v.dtype), v)
        return jnp.einsum("btnh,nhw->btw", out, self.out.kernel[layer]) + self.out.bias[layer]


class MlpBlock(nnx.Module):
    def __init__(self, depth, width, mlp_dim, *, rngs):
        self.Dense_0 = Dense((depth, width, mlp_dim), (depth, mlp_dim), width, rngs=rngs)
        self.Dense_1 = Dense((depth, mlp_dim, width), (depth, width), mlp_dim, rngs=rngs)

    def __call__(self, x, layer):
        h = jax.nn.gelu(x @ self.Dense_0.kernel[layer] + self.Dense_0.bias[layer], approximate=True)
        return h @ self.Dense_1.kernel[layer] + self.Dense_1.bias[layer]


class EncoderBlock(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, rngs):
        self.LayerNorm_0 = LayerNorm((cfg.depth, cfg.width))
        self.MultiHeadDotProductAttention_0 = MultiHeadAttention(cfg.depth, cfg.width, cfg.num_heads, rngs=rngs)
        self.LayerNorm_1 = LayerNorm((cfg.depth, cfg.width))
        self.MlpBlock_0 = MlpBlock(cfg.depth, cfg.width, cfg.mlp_dim, rngs=rngs)

    def __call__(self, x, layer, record: bool = False):
        ln0, ln1 = self.LayerNorm_0, self.LayerNorm_1
        x = x + self.MultiHeadDotProductAttention_0(layer_norm(x, ln0.scale[layer], ln0.bias[layer]), layer, record)
        return x + self.MlpBlock_0(layer_norm(x, ln1.scale[layer], ln1.bias[layer]), layer)


class Encoder(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, rngs, scan_layers: bool = False, remat: bool = False):
        self.depth, self.scan_layers, self.remat = cfg.depth, scan_layers, remat
        self.encoderblock = EncoderBlock(cfg, rngs=rngs)
        self.encoder_norm = LayerNorm((cfg.width,))

    def __call__(self, x, record: bool = False):
        x, _ = run_layers(lambda x, layer, _: (self.encoderblock(x, layer, record), None), x, self.depth,
                          scan=self.scan_layers and not record, remat=self.remat and not record)
        return layer_norm(x, self.encoder_norm.scale[...], self.encoder_norm.bias[...])


class SigLIP(nnx.Module):
    """Images ``[b, S, S, 3]`` in [−1, 1] → tokens ``[b, (S/patch)², out_width]``."""

    def __init__(self, cfg: VisionConfig, out_width: int, *, rngs: nnx.Rngs, scan_layers: bool = False,
                 remat: bool = False):
        self.cfg = cfg
        p, w = cfg.patch_size, cfg.width
        self.embedding = Dense((p, p, 3, w), (w,), p * p * 3, rngs=rngs)  # HWIO conv kernel
        self.pos_embedding = fan_in_normal(rngs, (1, cfg.num_patches, w), w)
        self.Transformer = Encoder(cfg, rngs=rngs, scan_layers=scan_layers, remat=remat)
        self.head = Dense((w, out_width), (out_width,), w, rngs=rngs)

    def __call__(self, images: Float[ArrayLike, "b y x 3"], *, record_attention: bool = False) -> Float[Array, "b i d"]:
        s = self.cfg.image_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise ValueError(f"images must be [batch, {s}, {s}, 3], got {tuple(images.shape)}")
        x = embed_patches(images, self.embedding.kernel[...], self.embedding.bias[...])  # [b, i, w]
        x = x + self.pos_embedding[...]  # learned, one vector per patch position
        x = self.Transformer(x, record_attention)
        return x @ self.head.kernel[...] + self.head.bias[...]
