"""docs/extending.md's worked examples: each class + YAML, and nothing else, does what it says."""

import json
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import save_file

from backplay_exp.backbones.base import load_backbone
from backplay_exp.data.tokenizer import char_tokenizer
from backplay_exp.transformer.config import TransformerConfig
from backplay_exp.transformer.model import DLMTransformer
from tests.docs.examples import doc_files, install

DOC = Path(__file__).parents[2] / "docs" / "extending.md"


@pytest.fixture
def with_examples(tmp_path, monkeypatch):
    """Load the doc's modules and put its YAMLs on Hydra's search path (not into the repo)."""
    files = doc_files(DOC)
    assert {p for p in files if p.endswith(".py")} == {
        "backplay_exp/benchmarks/exact_match.py",
        "backplay_exp/backbones/llama_dlm.py",
    }
    return install(files, tmp_path, monkeypatch)


def test_the_benchmark_example_reads_its_file_and_scores_by_exact_match(
    compose_cfg, with_examples, tmp_path
):
    rows = [{"question": "2+2?", "answer": "4"}, {"question": "3*3?", "answer": "9"}]
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = compose_cfg(with_examples, "benchmark=exact_match", f"benchmark.path={data}", tiny=False)
    assert (cfg.sampler.gen_length, cfg.sampler.block_length) == (64, 32)
    benchmark = instantiate(cfg.benchmark)
    problems = benchmark.problems()
    assert [p.prompt for p in problems] == ["Question: 2+2?\nAnswer:", "Question: 3*3?\nAnswer:"]
    assert problems[0].meta["convention"] == "question_answer_0shot"
    completions = [benchmark.cut(" 4\n\nQuestion: 5+5?"), " 8\n"]
    assert completions[0] == " 4"
    verdicts = benchmark.score(problems, completions)
    assert [(v.correct, v.extracted) for v in verdicts] == [(True, "4"), (False, "8")]


def write_llama_checkpoint(out: Path, keymap) -> DLMTransformer:
    """A random model saved with Llama's config fields and weight names, and a tokenizer."""
    tokenizer = char_tokenizer()
    cfg = TransformerConfig(
        vocab_size=len(tokenizer), d_model=32, n_layers=2, n_heads=4, n_kv_heads=2,
        mlp_hidden=64, rope_theta=10000.0, norm_eps=1e-5,
    )  # fmt: skip
    torch.manual_seed(0)
    model = DLMTransformer(cfg)
    model.reset_parameters()
    out.mkdir()
    save_file({keymap.to_published(k): v for k, v in model.state_dict().items()},
              str(out / "model.safetensors"))  # fmt: skip
    published = {
        "architectures": ["LlamaForMaskedDiffusion"], "hidden_act": "silu",
        "vocab_size": cfg.vocab_size, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "mask_token_id": tokenizer.mask_token_id,
    }  # fmt: skip
    (out / "config.json").write_text(json.dumps(published))
    tokenizer.save_pretrained(str(out))
    return model


def test_the_backbone_example_loads_runs_and_saves_a_llama_named_checkpoint(
    compose_cfg, with_examples, tmp_path
):
    family = sys.modules["backplay_exp.backbones.llama_dlm"].LlamaDLMBackbone
    reference = write_llama_checkpoint(tmp_path / "ckpt", family.keymap)
    cfg = compose_cfg(
        with_examples, "backbone=llama_dlm", f"backbone.name_or_path={tmp_path / 'ckpt'}",
        "backbone.dtype=float32", tiny=False,
    )  # fmt: skip
    backbone = instantiate(cfg.backbone)
    # every published tensor landed on its parameter
    loaded = backbone.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.state_dict().items())
    assert backbone.mask_id == backbone.tokenizer.mask_token_id
    tokens = torch.randint(3, 40, (2, 12), generator=torch.Generator().manual_seed(1))
    out = backbone(tokens)
    assert out.logits.shape == (2, 12, len(backbone.tokenizer))
    assert out.hidden.shape == (2, 12, 32)
    torch.testing.assert_close(out.hidden, backbone.hidden_states(tokens), rtol=0, atol=0)
    # a stage saves it in the published layout and reads it back bit-identically
    backbone.save(tmp_path / "stage", cfg.backbone)
    assert (tmp_path / "stage" / "hf" / "config.json").exists()
    again = load_backbone(tmp_path / "stage")
    assert type(again).__name__ == "LlamaDLMBackbone"
    assert torch.equal(again(tokens).logits, out.logits)


def test_the_backbone_example_refuses_another_architecture(with_examples, tmp_path):
    family = sys.modules["backplay_exp.backbones.llama_dlm"].LlamaDLMBackbone
    with pytest.raises(ValueError, match="attention_bias"):
        family.transformer_config({"hidden_act": "silu", "attention_bias": True})


def test_the_experiment_example_sweeps_on_the_quickstart(compose_cfg, with_examples):
    cfg = compose_cfg(with_examples, "+experiment=my_sweep", hydra_cfg=True)
    assert dict(cfg.hydra.sweeper.params) == {
        "remask": "backplay_toy,random_toy",
        "sampler.tokens_per_step": "2,4",
        "seed": "0,1,2,3,4",
    }
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.sampler.stop.max_steps_factor == 3
