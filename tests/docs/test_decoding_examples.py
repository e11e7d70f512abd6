"""docs/decoding.md's worked examples: one class + one YAML each, and nothing else, runs."""

import re
import shlex
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from tests.docs.examples import doc_files, install
from tests.fakes import small_tiny

DOC = Path(__file__).parents[2] / "docs" / "decoding.md"
COMMAND = re.compile(r"```bash\n(python -m backplay_exp .*?)\n```")


def doc_overrides(option: str) -> list[str]:
    """The overrides of the doc's command that uses `option`."""
    for command in COMMAND.findall(DOC.read_text()):
        if option in command:
            return shlex.split(command)[3:]
    raise AssertionError(f"docs/decoding.md shows no command with {option}")


@pytest.fixture
def with_examples(tmp_path, monkeypatch):
    """Load the doc's modules and put its YAMLs on Hydra's search path (not into the repo)."""
    files = doc_files(DOC)
    assert sorted(Path(p).suffix for p in files) == [".py", ".py", ".yaml", ".yaml"]
    return install(files, tmp_path, monkeypatch)


def decoder_of(compose_cfg, search_path, *overrides):
    cfg = compose_cfg(search_path, *overrides)
    return instantiate(cfg.sampler, remasker=instantiate(cfg.remask))


def prompts():
    return torch.randint(6, 40, (3, 5), generator=torch.Generator().manual_seed(0))


def test_the_remask_example_remasks(compose_cfg, with_examples):
    overrides = doc_overrides("remask=disagree")
    decoder = decoder_of(compose_cfg, with_examples, *overrides, "remask.threshold=0.0")
    assert decoder.name == "disagree" and decoder.tokens_per_step == 4
    out = decoder.generate(small_tiny(0), prompts())
    # a random model disagrees with much of what it committed: remasks happen, and end
    assert out.remasks.sum() > 0 and not (out.tokens == small_tiny(0).mask_id).any()
    recorded = decoder.describe()["decoder"]["remasker"]
    assert recorded["_target_"].endswith("DisagreementRemasker") and recorded["stride"] == 1


def test_the_cache_example_refreshes_on_its_interval(compose_cfg, with_examples):
    overrides = doc_overrides("sampler/cache=dual_every")
    backbone = small_tiny(1)
    uncached = [o for o in overrides if "cache" not in o]
    plain = decoder_of(compose_cfg, with_examples, *uncached)
    every = {n: decoder_of(compose_cfg, with_examples, *overrides, f"sampler.cache.every={n}")
             for n in (1, 2)}  # fmt: skip
    outs = {n: d.generate(backbone, prompts()) for n, d in every.items()}
    reference = plain.generate(backbone, prompts())
    # recorded at every step, the cache is exact: the tokens of no cache
    assert torch.equal(outs[1].tokens, reference.tokens)
    assert every[1].cache.records == reference.nfe.max().item()
    # every 2 steps: half the records (the toy's 16-token blocks at k = 2 take 8 steps)
    assert every[2].cache.records == every[1].cache.records // 2
    assert every[2].describe()["cache"] == "dual_every"
