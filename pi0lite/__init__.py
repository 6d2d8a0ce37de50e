"""pi0lite: a small, exact, teachable pi0 family in JAX + Flax NNX."""

__version__ = "0.1.0"
