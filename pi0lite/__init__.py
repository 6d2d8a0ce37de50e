"""pi0lite: a small, exact, teachable pi0 family in JAX + Flax NNX.

Axis letters
------------
One legend for every model module (``config, masks, flow, norms, gemma, vision, observation,
pi0, pi0_fast``) and ``fast/``: einsum strings, jaxtyping annotations and docstrings use these
letters, and no letter means two things.

==  ===================================================  ==  ==================================================
b   batch                                                l   layers (depth)
t   tokens of this call (the queries)                    d   width of a Gemma expert (pi0: the VLM's)
s   key/value tokens (cache + this call)                 e   width of pi0's action expert
p   prefix tokens (image tokens + prompt slots)          c   adaRMS condition width
q   suffix tokens (state token + action tokens)          n   query heads
r   prompt (text) token slots                            k   key/value heads
i   image tokens (patches) of one camera                 g   query heads per kv head (n = k·g)
o   tokens decoded by pi0-FAST                           h   head dim
a   action steps (the action horizon)                    f   Gemma feed-forward hidden size
j   action dims (``action_dim``; state dims ≤ it)        v   vocabulary
u   DCT frequencies of a chunk (FAST; as many as a)      w   vision-tower width
z   flattened DCT coefficients (FAST; u·j)               m   vision MLP hidden size
y   pixel rows                                           x   pixel columns (colour is the literal 3)
==  ===================================================  ==  ==================================================

A leading underscore (``_t``) marks a size that may differ between arguments (jaxtyping does not
check it); ``*lead`` stands for any leading axes.
"""

__version__ = "0.1.0"
