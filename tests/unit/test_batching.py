"""A batch of left-padded problems decodes exactly like each problem alone (temperature 0)."""

import torch

from backplay_exp.data.collate import encode_prompts
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.remaskers import NoRemask
from tests.fakes import small_tiny


def test_batch_equals_one_by_one():
    backbone = small_tiny(0)
    texts = ["1+2", "3*4-1+0=", "9", "22+7-3"]
    decoder = Decoder(NoRemask(), gen_length=12, block_length=4, tokens_per_step=2)
    ids, mask = encode_prompts(backbone.tokenizer, texts)
    assert not mask.all()  # the batch really is padded
    batch = decoder.generate(backbone, ids, mask)
    for i, text in enumerate(texts):
        one_ids, one_mask = encode_prompts(backbone.tokenizer, [text])
        alone = decoder.generate(backbone, one_ids, one_mask)
        assert alone.tokens[0].tolist() == batch.tokens[i].tolist(), text
        assert alone.nfe[0] == batch.nfe[i]


def test_padding_does_not_change_logits_of_real_tokens():
    backbone = small_tiny(1)
    ids, mask = encode_prompts(backbone.tokenizer, ["12345", "12"])
    with torch.no_grad():
        padded = backbone(ids, mask)
        alone = backbone(ids[1:, 3:])
    assert torch.allclose(padded.logits[1, 3:], alone.logits[0], atol=1e-5)
    assert torch.allclose(padded.hidden[1, 3:], alone.hidden[0], atol=1e-5)
