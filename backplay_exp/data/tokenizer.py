"""Character-level tokenizer for the embedded `tiny` backbone.

One token per printable ASCII character plus three special tokens (pad, EoS, mask), built with
`tokenizers` and wrapped in a `PreTrainedTokenizerFast`, so that it saves and loads with
`save_pretrained` / `from_pretrained` exactly like the tokenizer of a real backbone.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, MASK = "<|pad|>", "<|eos|>", "<|mask|>"
# \x0b \x0c \r are printable to Python but only trouble in a char vocabulary.
DEFAULT_CHARS = "".join(c for c in string.printable if c not in "\x0b\x0c\r")


def char_tokenizer(chars: str = DEFAULT_CHARS) -> PreTrainedTokenizerFast:
    """Build a char-level tokenizer: ids 0, 1, 2 are pad, EoS, mask; then one id per char.

    Args:
        chars: The alphabet; every character of every prompt and answer must be in it.

    Returns:
        A fast tokenizer with `pad_token_id`, `eos_token_id` and `mask_token_id` set.
    """
    if len(set(chars)) != len(chars):
        raise ValueError("char_tokenizer: `chars` has repeated characters")
    specials = [PAD, EOS, MASK]
    vocab = {tok: i for i, tok in enumerate(specials + list(chars))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, mask_token=MASK
    )
