"""The `datasets`-based SFT data module on local files (no hub): selection, formats, EoS rule."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate

from backplay_exp.data.hf_sft import HFSFTDataModule
from backplay_exp.data.templates import ChatTemplate, PlainTemplate
from backplay_exp.data.tokenizer import char_tokenizer
from backplay_exp.diffusion import maskable_positions

ROWS = [
    {"question": f"{i}+{i}", "cot": f"<<{i}+{i}={2 * i}>>", "answer": str(2 * i)} for i in range(10)
]
ROWS[3]["cot"] = "x" * 60  # too long for seq_len 40: dropped
# a chat template written in the char vocabulary: <user>q<assistant>a|
CHAT = (
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}"
    "{% if m.role == 'assistant' %}|{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def module(jsonl, **kw):
    args = {
        "tokenizer": char_tokenizer(),
        "path": "json",
        "name": None,
        "split": "train",
        "data_files": str(jsonl),
        "streaming": False,
        "n_train": 6,
        "n_val": 3,
        "val_split": None,
        "prompt_format": "Q:{question}\n",
        "response_format": "{cot}\n#### {answer}",
        "template": None,
        "seq_len": 40,
        "seed": 0,
        "batch_size": 2,
        "num_workers": 0,
    }
    return HFSFTDataModule(**{**args, **kw})


@pytest.mark.parametrize("streaming", [False, True])
def test_first_n_rows_then_the_next_ones_for_validation(jsonl, streaming):
    dm = module(jsonl, streaming=streaming)
    dm.setup("fit")
    train_prompts = [p for p, _, _ in dm.train_set.pairs]
    # rows 0..5 minus the long row 3; validation = rows 6..8
    assert train_prompts == [f"Q:{i}+{i}\n" for i in (0, 1, 2, 4, 5)]
    assert [p for p, _, _ in dm.val_set.pairs] == [f"Q:{i}+{i}\n" for i in (6, 7, 8)]


def test_batches_are_prompt_response_eos_to_seq_len(jsonl):
    dm = module(jsonl)
    dm.setup("fit")
    tok = dm.tokenizer
    batch = next(iter(dm.val_dataloader()))
    ids, resp = batch["input_ids"], batch["response_mask"]
    assert ids.shape == resp.shape == (2, 40) and resp.dtype == torch.bool
    text = "Q:6+6\n<<6+6=12>>\n#### 12"
    n_prompt = len("Q:6+6\n")
    assert tok.decode(ids[0, : len(text)]) == text
    assert (ids[0, len(text) :] == tok.eos_token_id).all()  # EoS padding to seq_len
    assert not resp[0, :n_prompt].any() and resp[0, n_prompt:].all()
    # the EoS rule on top: the answer plus its first 3 EoS are maskable, the rest stay visible
    maskable = maskable_positions(ids, resp, tok.eos_token_id, eos_maskable=3)
    assert maskable[0].nonzero().squeeze(-1).tolist() == list(range(n_prompt, len(text) + 3))


def test_train_batches_are_shuffled_with_the_seed(jsonl):
    orders = []
    for _ in range(2):
        dm = module(jsonl)
        dm.setup("fit")
        orders.append([b["input_ids"].tolist() for b in dm.train_dataloader()])
    assert orders[0] == orders[1] and len(orders[0]) == 2  # 5 examples, batch 2, drop_last


def test_chat_template_splits_prompt_and_response():
    tok = char_tokenizer()
    tok.chat_template = CHAT
    tpl = ChatTemplate()
    assert tpl.prompt(tok, "1+1") == "<user>1+1<assistant>"
    assert tpl.response(tok, "1+1", "2") == "2|"  # the end-of-turn text comes from the template
    assert PlainTemplate().response(tok, "1+1", "2") == "2"
    with pytest.raises(ValueError, match="has no chat template"):
        ChatTemplate().prompt(char_tokenizer(), "1+1")


def test_chat_template_in_the_data(jsonl):
    tok = char_tokenizer()
    tok.chat_template = CHAT
    dm = module(
        jsonl,
        tokenizer=tok,
        template=ChatTemplate(),
        prompt_format="{question}",
        response_format="{answer}",
    )
    dm.setup("fit")
    assert dm.train_set.pairs[0][:2] == ("<user>0+0<assistant>", "0|")


def test_split_and_saved_dataset_and_missing_fields(jsonl, tmp_path):
    import datasets

    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(ROWS[:5]),
            "validation": datasets.Dataset.from_list(ROWS[5:]),
        }
    ).save_to_disk(str(tmp_path / "saved"))
    dm = module(
        jsonl,
        path=str(tmp_path / "saved"),
        data_files=None,
        n_train=None,
        val_split="validation",
        n_val=2,
    )
    dm.setup("fit")
    assert len(dm.train_set) == 4 and len(dm.val_set) == 2  # all 5 minus the long one
    with pytest.raises(KeyError, match=r"no field\(s\) \['problem'\]"):
        module(jsonl, prompt_format="{problem}").setup("fit")
    with pytest.raises(ValueError, match=r"set data\.val_split or data\.n_train"):
        module(jsonl, n_train=None)


def test_data_options_build_offline(compose_cfg):
    for option in ("gsm8k_aug", "opencodeinstruct", "openmathinstruct2"):
        cfg = compose_cfg(f"data={option}", tiny=False)
        dm = instantiate(cfg.data, tokenizer=char_tokenizer())  # no download before setup()
        assert isinstance(dm, HFSFTDataModule)
        assert dm.seq_len == (256 if option == "gsm8k_aug" else 1024)
        if option != "gsm8k_aug":
            assert dm.n_train == 500_000 and dm.source["streaming"]
            assert isinstance(dm.template, ChatTemplate)
