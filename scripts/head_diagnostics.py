"""What the correction head catches at decode time, on the toy worksheet (issue 18's question).

    python scripts/head_diagnostics.py +experiment=quickstart sampler.tokens_per_step=4 \
        remask=backplay_toy benchmark.seed=4321 benchmark.n_problems=1024 [seed=1 ...]

Decodes with the config's BackPlay policy and trained stages (from the stage cache; trained
first if missing) and records every step at which the head is consulted. Over the committed
look-back-window tokens at those steps it reports, against the reference worksheet: the head's
decode-time AUROC, recall and false-positive rate at the policy's τ, what the remasks hit, and
the same split into *root* errors (a running value that does not follow from the committed
value before it: the mistake itself) and *dependent* ones (correct arithmetic on a wrong
predecessor: wrong only because of an earlier mistake). Also: rows that ran into the step cap,
and rows that took over twice the plain steps.

Toy-specific: the response restates the worksheet, `v0 op1 d1 = r1 op2 d2 = r2 ...`, one
character per token, running value i at response offset 4i.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict
from torchmetrics.functional.classification import binary_auroc

from backplay_exp.data.collate import encode_prompts
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.remaskers import HeadRemasker
from backplay_exp.samplers.state import Head, Step
from backplay_exp.tasks.eval import reference_tokens
from backplay_exp.tasks.models import decoding_model

CONF = Path(__file__).resolve().parents[1] / "conf"


class Recording(HeadRemasker):
    """The configured BackPlay remasker, keeping what it saw at every step it judged."""

    def __init__(self, remasker: HeadRemasker) -> None:
        self.__dict__.update(remasker.__dict__)
        self.inner, self.steps = remasker, []

    def select(self, step: Step, head: Head | None, generator=None) -> torch.Tensor:
        """Judge as the remasker does; record x, the window, e and the remasks of due rows."""
        remask = self.inner.select(step, head, generator)
        if step.due.any():
            due, p_err = step.due, self.inner.error_scores(step, head, generator)
            self.steps.append((step.x[due], step.committed[due], p_err[due], remask[due]))
        return remask


def root_errors(x: torch.Tensor, p_len: int, tok) -> torch.Tensor:
    """(b, T) bool: running values that do not follow from the committed value before them."""
    out = torch.zeros_like(x, dtype=torch.bool)
    text = [tok.convert_ids_to_tokens(row.tolist()) for row in x]
    for b, chars in enumerate(text):
        resp = chars[p_len:]
        for i in range(1, 7):
            r, op, d, prev = 4 * i, resp[4 * i - 3], resp[4 * i - 2], resp[4 * i - 4]
            if not all(c.isdigit() for c in (resp[r], d, prev)) or op not in "+*":
                continue
            want = (int(prev) + int(d)) % 5 if op == "+" else (int(prev) * int(d)) % 5
            out[b, p_len + r] = int(resp[r]) != want
    return out


def main() -> None:
    """Decode, record, report."""
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("config", overrides=sys.argv[1:])
    with open_dict(cfg):
        cfg.paths.output_dir = "/tmp/head_diagnostics"
    policy = instantiate(cfg.remask)
    if not isinstance(policy, HeadRemasker) or not policy.uses_head:
        sys.exit("give a remask policy that uses the head (remask=backplay_toy)")
    recording = Recording(policy)
    decoder: Decoder = instantiate(cfg.sampler, remasker=recording)
    backbone, head, _ = decoding_model(cfg, True)
    backbone.eval(), head.eval()
    bench = instantiate(cfg.benchmark)
    problems = bench.problems()
    tok = backbone.tokenizer
    ids, mask = encode_prompts(tok, [p.prompt for p in problems])
    p_len = ids.shape[1]
    ref = reference_tokens(tok, problems, decoder.gen_length, backbone.eos_id)
    by_prompt = {tuple(row.tolist()): i for i, row in enumerate(ids)}
    out = decoder.generate(backbone, ids, mask, head, torch.Generator().manual_seed(cfg.seed))
    e, wrong, roots, remasked = [], [], [], []
    for x, window, p_err, chosen in recording.steps:
        rows = [by_prompt[tuple(r.tolist())] for r in x[:, :p_len]]
        truth = torch.cat([ids[rows], ref[rows]], dim=1)
        err = (x != truth) & window
        root = root_errors(x, p_len, tok) & err
        e.append(p_err[window]), wrong.append(err[window])
        roots.append(root[window]), remasked.append(chosen[window])
    e, wrong, roots, remasked = (torch.cat(t) for t in (e, wrong, roots, remasked))
    dependent = wrong & ~roots
    tau = policy.threshold
    flagged = e > tau
    texts = [tok.decode(r, skip_special_tokens=True) for r in out.tokens]
    verdicts = bench.score(problems, [bench.cut(t) for t in texts])
    final_wrong = sum(not v.correct for v in verdicts)
    plain = decoder.commit.plain_steps(decoder.block_length, 1) * (
        -(-decoder.gen_length // decoder.block_length)
    )
    slow = int((out.nfe > 2 * plain).sum())
    print(
        f"problems {len(problems)}: accuracy {1 - final_wrong / len(problems):.3f}, "
        f"NFE {out.nfe.float().mean():.1f} (plain {plain}); rows over twice the plain steps "
        f"(cycling towards the cap): {slow}"
    )
    print(
        f"judged tokens {len(e)} at {len(recording.steps)} steps; errors {int(wrong.sum())} "
        f"({int(roots.sum())} root, {int(dependent.sum())} dependent)"
    )

    def auroc(sel: torch.Tensor) -> float:
        pool = sel | ~wrong  # these errors against every correct token
        return binary_auroc(e[pool], sel[pool].long()).item()

    print(
        f"decode-time AUROC of e: all errors {auroc(wrong):.3f}, root {auroc(roots):.3f}, "
        f"dependent {auroc(dependent):.3f}"
    )
    for name, sel in (("root", roots), ("dependent", dependent)):
        print(f"recall at τ={tau}: {name} {flagged[sel].float().mean():.3f}")
    print(f"false-positive rate at τ: {flagged[~wrong].float().mean():.4f}")
    hits = Counter(
        "root" if r else "dependent" if d else "correct"
        for r, d in zip(roots[remasked].tolist(), dependent[remasked].tolist(), strict=True)
    )
    print(f"remasked tokens {int(remasked.sum())}: {dict(hits)}")


if __name__ == "__main__":
    main()
