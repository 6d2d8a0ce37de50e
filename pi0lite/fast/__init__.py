"""The FAST action tokenizer and the pieces of pi0-FAST's prompt that use it.

* :mod:`pi0lite.fast.tokenizer` — :class:`FastTokenizer`: fit, encode, decode (BPE via ``tokenizers``);
* :mod:`pi0lite.fast.quantise` — :class:`FastConfig` and the DCT + quantisation stage;
* :mod:`pi0lite.fast.files` — saving and loading a tokenizer (config + BPE, paired by sha256);
* :mod:`pi0lite.fast.bpe` — the character alphabets the BPE runs over;
* :mod:`pi0lite.fast.prompt` — pi0-FAST's prompt layout and action extraction;
* :mod:`pi0lite.fast.decode` — prefill + cached autoregressive decoding of a :class:`pi0lite.pi0_fast.Pi0Fast`.

Depends on the model modules at the top of the package, never on ``toy/`` or ``course/``.
"""

from pi0lite.fast.quantise import FastConfig, dct_quantise, dequantise_idct
from pi0lite.fast.tokenizer import FastTokenizer

__all__ = ["FastConfig", "FastTokenizer", "dct_quantise", "dequantise_idct"]
