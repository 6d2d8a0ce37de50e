"""Instruction tokenizers: a small word-level one (HF ``tokenizers``) and a sentencepiece adapter.

Both satisfy :class:`InstructionTokenizer`, the small protocol the models rely on:
``encode(text) -> ids`` (BOS first), ``decode(ids)``, ``bos_id``, ``eos_id``, ``pad_id``,
``vocab_size``. ``tokenize_batch`` pads to a fixed length and returns the mask, like openpi's
``TokenizePrompt``; a prompt longer than ``max_len`` is an error, never silently truncated.

The toy task needs only a handful of words, so :class:`WordTokenizer` is a WordLevel model over
the words of the training instructions (lower-cased, whitespace split), saved as one
``tokenizer.json`` next to the model. The real PaliGemma sentencepiece model can be plugged in
with :class:`SentencePieceTokenizer` when its ``.model`` file is given (needs ``sentencepiece``).

Axis letters: b batch, l token slots.
"""

from __future__ import annotations

import pathlib
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from jaxtyping import Bool, Int

PAD, BOS, EOS, UNK = "[PAD]", "[BOS]", "[EOS]", "[UNK]"
#: The extra words of pi0.5's discrete-state prompt: its keywords, punctuation, newline and the bins -1 … 255.
STATE_PROMPT_WORDS = ("task", "state", "action", ":", ",", ";", "\n", *(str(k) for k in range(-1, 256)))


@runtime_checkable
class InstructionTokenizer(Protocol):
    bos_id: int
    eos_id: int
    pad_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int | np.integer] | Int[np.ndarray, "l"]) -> str: ...


class WordTokenizer:
    """Word-level tokenizer: ids 0..3 are [PAD], [BOS], [EOS], [UNK]; then the words, sorted."""

    def __init__(self, tokenizer):
        self.tok = tokenizer  # a ``tokenizers.Tokenizer``
        self.pad_id, self.bos_id = tokenizer.token_to_id(PAD), tokenizer.token_to_id(BOS)
        self.eos_id = tokenizer.token_to_id(EOS)
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def from_texts(cls, texts: Sequence[str], *, state_prompt: bool = False) -> "WordTokenizer":
        """Build the vocabulary from the words of ``texts`` (deterministic: sorted).

        ``state_prompt=True`` also covers pi0.5's discrete-state prompt
        (:func:`pi0lite.prompt.pi05_prompt`): ``:``, ``,``, ``;`` and the newline become tokens of
        their own, and the words ``task``, ``state``, ``action`` and every state bin ``-1 … 255``
        join the vocabulary (about 270 more ids).
        """
        words = {w for t in texts for w in t.lower().split()}
        if state_prompt:
            words |= set(STATE_PROMPT_WORDS)
        return cls.from_words(sorted(words), state_prompt=state_prompt)

    def with_words(self, words: Sequence[str]) -> "WordTokenizer":
        """A copy with ``words`` appended: every old word keeps its id, the new ones get the next ids."""
        vocab = self.tok.get_vocab()
        new = [w.lower() for w in words]
        known = [w for w in new if w in vocab]
        if known or len(set(new)) != len(new) or any(not w or w.split() != [w] for w in new):
            raise ValueError(f"with_words: {list(words)} must be new, distinct single words (known: {known})")
        old = sorted(vocab, key=vocab.get)[4:]
        return WordTokenizer.from_words([*old, *new], state_prompt="\n" in vocab)

    @classmethod
    def from_words(cls, words: Sequence[str], *, state_prompt: bool = False) -> "WordTokenizer":
        """Ids 0..3 for the special tokens, then ``words`` in the order given (``state_prompt``: see
        :meth:`from_texts`)."""
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

        vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK, *words])}
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
        tok.add_special_tokens([PAD, BOS, EOS, UNK])  # already in the vocab: only marks them special
        tok.normalizer = normalizers.Lowercase()
        if state_prompt:  # split at spaces (removed) and isolate the punctuation and the newline
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),
                pre_tokenizers.Split(Regex(r"[:,;\n]"), behavior="isolated"),
            ])
        else:
            tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        # BOS first, as PaliGemma's tokenizer does (openpi adds it explicitly)
        tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of many texts at once (the library's batched path)."""
        return [e.ids for e in self.tok.encode_batch(list(texts))]

    def decode(self, ids: Sequence[int | np.integer] | Int[np.ndarray, "l"]) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def token_to_id(self, word: str) -> int | None:
        return self.tok.token_to_id(word)

    def save(self, path) -> None:
        """Write ``tokenizer.json`` (the ``tokenizers`` format) to the file ``path``."""
        self.tok.save(str(path))

    @classmethod
    def load(cls, path) -> "WordTokenizer":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(pathlib.Path(path))))


class SentencePieceTokenizer:
    """Adapter for a sentencepiece model file (e.g. PaliGemma's ``paligemma_tokenizer.model``)."""

    def __init__(self, model_file):
        import sentencepiece  # optional dependency, only when a model file is given

        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self.bos_id, self.eos_id = self.sp.bos_id(), self.sp.eos_id()
        self.pad_id = max(self.sp.pad_id(), 0)
        self.vocab_size = self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return [self.bos_id, *self.sp.encode(text)]

    def decode(self, ids: Sequence[int | np.integer] | Int[np.ndarray, "l"]) -> str:
        return self.sp.decode([int(i) for i in ids if int(i) not in (self.bos_id, self.pad_id)])

    def token_to_id(self, word: str) -> int | None:
        pieces = self.sp.encode(word)
        return pieces[0] if len(pieces) == 1 else None


def instruction_tokenizer(*, state_prompt: bool = False) -> WordTokenizer:
    """The toy's word tokenizer: the words of its instructions (``state_prompt``: and pi0.5's prompt words)."""
    from pi0lite.toy import scene

    return WordTokenizer.from_texts([scene.instruction(c) for c in range(len(scene.COLOURS))], state_prompt=state_prompt)


def tokenize_batch(
    tokenizer: InstructionTokenizer, texts: Sequence[str], max_len: int
) -> tuple[Int[np.ndarray, "b l"], Bool[np.ndarray, "b l"]]:
    """Encode and right-pad every text to ``max_len`` with ``pad_id``; mask is True on real tokens."""
    ids = np.full((len(texts), max_len), tokenizer.pad_id, np.int32)
    mask = np.zeros((len(texts), max_len), bool)
    for i, text in enumerate(texts):
        tokens = tokenizer.encode(text)
        if len(tokens) > max_len:
            raise ValueError(f"prompt {text!r} has {len(tokens)} tokens, more than max_len={max_len}")
        ids[i, : len(tokens)], mask[i, : len(tokens)] = tokens, True
    return ids, mask


def first_position(ids: Int[np.ndarray, "b l"], wanted: Sequence[int]) -> Int[np.ndarray, " b"]:
    """Index of the first token of each row that is one of ``wanted``; error if a row has none."""
    hit = np.isin(ids, np.asarray(list(wanted)))
    if not hit.any(-1).all():
        raise ValueError(f"first_position: rows {np.nonzero(~hit.any(-1))[0][:5]} contain none of {list(wanted)}")
    return hit.argmax(-1).astype(np.int32)


def colour_positions(tokenizer, ids: Int[np.ndarray, "b l"]) -> Int[np.ndarray, " b"]:
    """Where the colour word (red/green/blue) sits in each tokenised toy instruction."""
    from pi0lite.toy.scene import COLOURS

    return first_position(ids, [tokenizer.token_to_id(c) for c in COLOURS])
