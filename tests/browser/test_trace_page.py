"""The trace page in a real browser: opens offline from disk and shows what trace.jsonl holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backplay_exp.data.collate import encode_prompts
from backplay_exp.samplers.decoder import Decoder
from backplay_exp.samplers.remaskers import NoRemask
from backplay_exp.samplers.trace.files import write_trace
from backplay_exp.samplers.trace.recorder import TraceRecorder
from backplay_exp.samplers.trace.records import (
    decode_header,
    read_records,
    read_trace,
    trace_records,
)
from tests.fakes import backplay_policy, small_tiny, stop_rule

PROMPT = "1+2=?*3=?"


def traced(decoder: Decoder, label: str, backbone, head) -> list[dict]:
    """The trace records of `decoder` on PROMPT."""
    ids, mask = encode_prompts(backbone.tokenizer, [PROMPT])
    trace = TraceRecorder(top=3)
    out = decoder.generate(backbone, ids, mask, head, torch.Generator().manual_seed(0), trace)
    text = backbone.tokenizer.decode(out.tokens[0])
    header = decode_header(decoder, backbone, PROMPT, [label], problem="p0", index=0, answer="3")
    result = trace.results[0] | {"completion": text, "extracted": text[:1], "correct": False}
    return trace_records(label, header, trace.steps_of(0), result, backbone.tokenizer)


def write_two_decoders(tmp_path: Path) -> Path:
    """trace.jsonl + trace.html of confidence decoding and a remasking decoder, side by side."""
    backbone = small_tiny(0)
    w = torch.randn(32, generator=torch.Generator().manual_seed(1))

    def head(hidden, attention_mask=None):  # a random linear head: it flags some tokens
        return hidden @ w

    conf = Decoder(NoRemask(), 16, 8, tokens_per_step=2, stop=stop_rule())
    remask = backplay_policy(threshold=0.3, max_remask=2, block_buffer=1, memory_steps=2)
    bp = Decoder(remask, 16, 8, tokens_per_step=2, stop=stop_rule())
    records = traced(conf, "confidence", backbone, None) + traced(bp, "backplay", backbone, head)
    write_trace(tmp_path, "trace", records, "p0: confidence vs backplay", figure=False)
    return tmp_path / "trace.html"


TOKENS = "els => els.map(e => ({tok: +e.dataset.tok, text: e.childNodes[0].textContent}))"
REMASKS = "els => els.map(e => ({pos: +e.dataset.pos, score: e.dataset.score}))"


# the first run on a bare machine installs chromium (tests/browser/conftest.py) within the test
@pytest.mark.timeout(900)
def test_page_opens_offline_and_shows_the_records(browser_page, tmp_path):
    page, blocked = browser_page
    html = write_two_decoders(tmp_path)
    records = read_records(html.with_suffix(".jsonl"))
    traces = read_trace(records)
    assert sum(len(r.record["remasks"]) for r in traces[1].steps) > 0  # something to mark
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(html.as_uri())
    assert blocked == [] and requested == [html.as_uri()]  # the page fetched nothing else
    assert errors == []
    assert page.locator("section.decoder").count() == 2
    for trace in traces:
        text = {int(k): v for k, v in trace.header["vocab"].items()}
        column = page.locator(f'section.decoder[data-decoder="{trace.label}"]')
        rows = column.locator("div.step:not(.final)")
        assert rows.count() == len(trace.steps)  # one row per step
        for n, step in enumerate(trace.steps):
            rec, row = step.record, rows.nth(n)
            assert row.get_attribute("data-nfe") == str(rec["nfe"])
            shown = row.locator(".t").evaluate_all(TOKENS)
            assert [s["tok"] for s in shown] == rec["canvas"]
            for s, cell in zip(shown, step.cells, strict=True):  # the text of each token
                if cell.kind not in ("mask", "remask") and s["tok"] != trace.header["eos_id"]:
                    assert s["text"] == text[s["tok"]]
            marks = row.locator(".t.remask").evaluate_all(REMASKS)
            expected = [{"pos": e["pos"], "score": f"{e['score']:.2f}"} for e in rec["remasks"]]
            assert marks == expected
            commits = row.locator(".t.commit").evaluate_all("els => els.map(e => +e.dataset.pos)")
            assert commits == sorted(e["pos"] for e in rec["commits"])
        final = column.locator("div.step.final .t").evaluate_all(TOKENS)
        assert [s["tok"] for s in final] == trace.result["tokens"]
    # hovering a remasked token shows its score and what replaced it
    mark = page.locator('section[data-decoder="backplay"] .t.remask').first
    mark.hover()
    tip = page.locator("#tip")
    assert tip.is_visible() and tip.text_content() == mark.get_attribute("data-tip")
    assert "remasked at step" in tip.text_content() and "head error" in tip.text_content()
    shot = html.with_name("trace_page.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
