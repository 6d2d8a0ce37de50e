"""Model configurations: frozen, keyword-only dataclasses with presets.

Presets
-------
``TINY``          seconds on a laptop CPU; the toy-task policy (issue "train a real policy").
``OPENPI_DUMMY``  the sizes of openpi's ``dummy`` Gemma + SigLIP ``mu/14`` used by the parity files.
``PI0``           the real pi0: Gemma-2B + Gemma-300M action expert + SigLIP So400m/14.

Every size is checked in ``__post_init__`` so a typo fails at construction with a message that
names the field, not deep inside a matmul.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

OPENPI_IMAGE_KEYS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
FAST_IMAGE_KEYS = ("base_0_rgb", "base_1_rgb", "wrist_0_rgb")
_DTYPES = ("float32", "bfloat16")


def require_positive(obj, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class GemmaConfig:
    """One Gemma expert (a stack of pre-norm transformer blocks).

    width: model width d; depth: number of blocks l; mlp_dim: GeGLU hidden size f;
    num_heads: query heads n; num_kv_heads: key/value heads k (1 = multi-query); head_dim: h
    (letters of the legend in :mod:`pi0lite`).
    """

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    lora_rank: int = 0  # > 0: LoRA on the attention and feed-forward einsums (pi0lite.lora)
    lora_alpha: float = 1.0  # LoRA scaling alpha / rank

    def __post_init__(self):
        require_positive(self, "width", "depth", "mlp_dim", "num_heads", "num_kv_heads", "head_dim")
        if not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise ValueError(f"GemmaConfig.lora_rank must be an int >= 0, got {self.lora_rank!r}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"GemmaConfig.num_heads ({self.num_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"GemmaConfig.head_dim must be even for RoPE, got {self.head_dim}")


@dataclass(frozen=True, kw_only=True)
class VisionConfig:
    """A SigLIP-style ViT: square images of ``image_size`` px cut into ``patch_size`` px patches."""

    image_size: int
    patch_size: int
    width: int
    depth: int
    mlp_dim: int
    num_heads: int

    def __post_init__(self):
        require_positive(self, "image_size", "patch_size", "width", "depth", "mlp_dim", "num_heads")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"VisionConfig.image_size ({self.image_size}) must be divisible by "
                f"patch_size ({self.patch_size})"
            )
        if self.width % self.num_heads:
            raise ValueError(
                f"VisionConfig.width ({self.width}) must be divisible by num_heads ({self.num_heads})"
            )

    @property
    def num_patches(self) -> int:
        """Image tokens per camera: (image_size / patch_size)²."""
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True, kw_only=True)
class Pi0Config:
    """pi0: a vision-language prefix expert plus an action expert sharing one attention.

    The two experts must agree on ``num_heads``, ``num_kv_heads``, ``head_dim`` and ``depth``
    because their queries, keys and values meet in one attention per layer.

    ``pi05=True`` gives pi0.5: no state token (the state, if used, is written into the prompt as
    text), the time enters the action expert through adaptive RMSNorms instead of being mixed
    into every action token.
    """

    action_dim: int
    action_horizon: int
    max_token_len: int
    vocab_size: int
    image_keys: tuple[str, ...]
    paligemma: GemmaConfig
    action_expert: GemmaConfig
    vision: VisionConfig
    dtype: str = "float32"
    pi05: bool = False
    scan_layers: bool = False  # run the layers with jax.lax.scan (compile time independent of depth)
    remat: bool = False  # recompute each layer in the backward pass (jax.checkpoint), as openpi

    def __post_init__(self):
        require_positive(self, "action_dim", "action_horizon", "max_token_len", "vocab_size")
        if not self.image_keys or len(set(self.image_keys)) != len(self.image_keys):
            raise ValueError(f"Pi0Config.image_keys must be non-empty and unique, got {self.image_keys!r}")
        if not isinstance(self.image_keys, tuple):
            raise ValueError(f"Pi0Config.image_keys must be a tuple, got {type(self.image_keys).__name__}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"Pi0Config.dtype must be one of {_DTYPES}, got {self.dtype!r}")
        p, a = self.paligemma, self.action_expert
        for name in ("depth", "num_heads", "num_kv_heads", "head_dim"):
            if getattr(p, name) != getattr(a, name):
                raise ValueError(
                    f"paligemma.{name} ({getattr(p, name)}) and action_expert.{name} "
                    f"({getattr(a, name)}) must be equal: the experts share one attention"
                )

    @property
    def num_image_tokens(self) -> int:
        return len(self.image_keys) * self.vision.num_patches

    @property
    def prefix_len(self) -> int:
        """Image tokens of every camera, then ``max_token_len`` text slots."""
        return self.num_image_tokens + self.max_token_len

    @property
    def suffix_len(self) -> int:
        """pi0: one state token, then ``action_horizon`` action tokens; pi0.5: the action tokens only."""
        return self.action_horizon + (0 if self.pi05 else 1)

    def replace(self, **changes) -> "Pi0Config":
        return dataclasses.replace(self, **changes)


# --- presets -------------------------------------------------------------------------------

GEMMA_DUMMY = GemmaConfig(width=64, depth=4, mlp_dim=128, num_heads=8, num_kv_heads=1, head_dim=16)
GEMMA_300M = GemmaConfig(width=1024, depth=18, mlp_dim=4096, num_heads=8, num_kv_heads=1, head_dim=256)
GEMMA_2B = GemmaConfig(width=2048, depth=18, mlp_dim=16_384, num_heads=8, num_kv_heads=1, head_dim=256)
SIGLIP_MU_14 = VisionConfig(image_size=224, patch_size=14, width=32, depth=1, mlp_dim=128, num_heads=2)
SIGLIP_SO400M_14 = VisionConfig(
    image_size=224, patch_size=14, width=1152, depth=27, mlp_dim=4304, num_heads=16
)
PALIGEMMA_VOCAB_SIZE = 257_152
# openpi's LoRA variants: same sizes, LoRA on attention and feed-forward.
GEMMA_2B_LORA = dataclasses.replace(GEMMA_2B, lora_rank=16, lora_alpha=16.0)
GEMMA_300M_LORA = dataclasses.replace(GEMMA_300M, lora_rank=32, lora_alpha=32.0)

TINY = Pi0Config(
    action_dim=4,
    action_horizon=16,
    max_token_len=8,
    vocab_size=32,
    image_keys=("base_0_rgb",),
    paligemma=GemmaConfig(width=64, depth=4, mlp_dim=128, num_heads=4, num_kv_heads=1, head_dim=16),
    action_expert=GemmaConfig(width=32, depth=4, mlp_dim=64, num_heads=4, num_kv_heads=1, head_dim=16),
    vision=VisionConfig(image_size=32, patch_size=8, width=32, depth=1, mlp_dim=64, num_heads=2),
)

OPENPI_DUMMY = Pi0Config(
    action_dim=32,
    action_horizon=50,
    max_token_len=48,
    vocab_size=1024,
    image_keys=OPENPI_IMAGE_KEYS,
    paligemma=GEMMA_DUMMY,
    action_expert=GEMMA_DUMMY,
    vision=SIGLIP_MU_14,
)

PI0 = Pi0Config(
    action_dim=32,
    action_horizon=50,
    max_token_len=48,
    vocab_size=PALIGEMMA_VOCAB_SIZE,
    image_keys=OPENPI_IMAGE_KEYS,
    paligemma=GEMMA_2B,
    action_expert=GEMMA_300M,
    vision=SIGLIP_SO400M_14,
    dtype="bfloat16",
)

OPENPI_DUMMY_PI05 = OPENPI_DUMMY.replace(pi05=True)
PI05 = PI0.replace(pi05=True, max_token_len=200)



def lora_variant(config: Pi0Config, *, paligemma: bool = True, action_expert: bool = True,
                 rank: int | None = None, alpha: float | None = None) -> Pi0Config:
    """``config`` with LoRA on the chosen experts: openpi's ranks by default (Gemma-2B width:
    ``gemma_2b_lora``, rank 16 / alpha 16; smaller widths: ``gemma_300m_lora``, rank 32 / alpha 32),
    or the given ``rank`` and ``alpha`` (default alpha = rank)."""

    def with_lora(c: GemmaConfig) -> GemmaConfig:
        r = rank if rank is not None else (16 if c.width >= GEMMA_2B.width else 32)
        return dataclasses.replace(c, lora_rank=r, lora_alpha=float(alpha if alpha is not None else r))

    return config.replace(
        paligemma=with_lora(config.paligemma) if paligemma else config.paligemma,
        action_expert=with_lora(config.action_expert) if action_expert else config.action_expert,
    )


PRESETS = {
    "tiny": TINY,
    "openpi_dummy": OPENPI_DUMMY,
    "openpi_dummy_pi05": OPENPI_DUMMY_PI05,
    "pi0": PI0,
    "pi05": PI05,
}
