"""SFT data from a `datasets` source: GSM8K-Aug, OpenCodeInstruct, OpenMathInstruct-2, local files.

BackPlay section 4 / App. B, D: SMDM-1B is fine-tuned on GSM8K-Aug (sequence length 256), LLaDA-8B
on the first 500,000 examples of OpenCodeInstruct or OpenMathInstruct-2 (sequence length 1024).
Every example is `prompt + response + EoS...` padded with EoS to exactly `seq_len` (LLaDA pads all
data to the maximum length); everything after the prompt is the response region, and the EoS
rule (`eos_maskable`, applied by the modules) decides which EoS carry loss.

Rows come from a hub name (streamed, so "the first N" reads only N rows) or a local path (a
directory of data files, a `save_to_disk` directory, or a builder name such as `json` with
`data_files`). `prompt_format` / `response_format` map a row's fields to text
(`"{cot} #### {answer}"`); the `template` (data/templates.py) turns that into model text. Examples
that do not fit in `seq_len` with at least one EoS after the answer are dropped (and counted).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from backplay_exp.data.collate import encode_sft_pairs
from backplay_exp.data.resumable import shuffled_loader
from backplay_exp.data.templates import PlainTemplate, Template

log = logging.getLogger(__name__)
Pair = tuple[str, str, int]  # prompt text, response text, prompt length in tokens
TOKENIZE_CHUNK = 1024


def format_fields(fmt: str) -> list[str]:
    """The field names a format string reads (`"Q: {question}"` -> `["question"]`)."""
    return [field for _, field, _, _ in string.Formatter().parse(fmt) if field]


def read_rows(
    path: str,
    name: str | None,
    split: str,
    data_files: str | list[str] | None,
    streaming: bool,
    limit: int | None,
) -> Iterable[dict[str, Any]]:
    """The first `limit` rows (None = all) of a hub dataset or local path."""
    import datasets

    local = Path(path)
    if local.is_dir() and any((local / f).exists() for f in ("state.json", "dataset_dict.json")):
        ds = datasets.load_from_disk(str(local))
        ds = ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    else:
        ds = datasets.load_dataset(
            path, name, split=split, data_files=data_files, streaming=streaming
        )
    if limit is None:
        return ds
    if isinstance(ds, datasets.IterableDataset):
        return ds.take(limit)
    return ds.select(range(min(limit, len(ds))))


def format_rows(
    rows: Iterable[dict[str, Any]], prompt_format: str, response_format: str
) -> tuple[list[str], list[str]]:
    """Questions and answers from rows through the two format strings.

    Raises:
        KeyError: naming the missing field and the fields the rows have.
    """
    needed = format_fields(prompt_format) + format_fields(response_format)
    questions, answers = [], []
    for i, row in enumerate(rows):
        missing = [f for f in needed if f not in row]
        if missing:
            raise KeyError(
                f"row {i} has no field(s) {missing} (it has {sorted(row)}): "
                "fix data.prompt_format / data.response_format"
            )
        questions.append(prompt_format.format(**row))
        answers.append(response_format.format(**row))
    return questions, answers


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[int]:
    """Token count of each text (no special tokens added, as in `encode_sft_pairs`)."""
    lengths: list[int] = []
    for lo in range(0, len(texts), TOKENIZE_CHUNK):
        ids = tokenizer(list(texts[lo : lo + TOKENIZE_CHUNK]), add_special_tokens=False)
        lengths.extend(len(x) for x in ids["input_ids"])
    return lengths


def fitting_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    seq_len: int,
) -> list[Pair]:
    """The (prompt, response, prompt length) triples that fit in `seq_len` with >= 1 EoS."""
    p_len, r_len = token_lengths(tokenizer, prompts), token_lengths(tokenizer, responses)
    return [
        (p, r, n_p)
        for p, r, n_p, n_r in zip(prompts, responses, p_len, r_len, strict=True)
        if n_p + n_r + 1 <= seq_len
    ]


class PairDataset(Dataset):
    """A list of (prompt, response, prompt length) triples."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Pair:
        return self.pairs[i]


class SFTCollator:
    """Tokenise a batch: each row `prompt + response + EoS...` exactly `seq_len` long.

    Args:
        tokenizer: The backbone's tokenizer.
        seq_len: Row length T.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, seq_len: int) -> None:
        self.tokenizer, self.seq_len = tokenizer, seq_len

    def __call__(self, batch: list[Pair]) -> dict[str, torch.Tensor]:
        """`input_ids` (B, T) long and `response_mask` (B, T) bool."""
        rows = [
            encode_sft_pairs(self.tokenizer, [p], [r], self.seq_len - n_p) for p, r, n_p in batch
        ]
        return {
            "input_ids": torch.cat([ids for ids, _ in rows]),  # (B, T)
            "response_mask": torch.cat([resp for _, resp in rows]),  # (B, T)
        }


class HFSFTDataModule(L.LightningDataModule):
    """SFT batches from a `datasets` source (module docstring).

    Args:
        tokenizer: The backbone's tokenizer.
        path: Hub dataset name, local directory, or builder name (`json`, `parquet`).
        name: Dataset configuration name, if any.
        split: Split the training rows come from.
        data_files: Files for a builder name or a directory (else null).
        streaming: Stream the rows (read only the first `n_train + n_val`).
        n_train: Use the first N rows of `split` for training (null = all).
        n_val: Validation examples.
        val_split: Split to validate on (its first `n_val` rows); null = the `n_val` rows of
            `split` right after the training rows.
        prompt_format: Format string over a row's fields giving the question.
        response_format: Format string over a row's fields giving the answer.
        template: How question and answer become model text (null = plain).
        seq_len: Length T of every row (prompt + response + EoS padding).
        seed: Seed of the shuffling.
        batch_size: Batch size (per device).
        num_workers: DataLoader workers (tokenisation runs there).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        path: str,
        name: str | None,
        split: str,
        data_files: str | list[str] | None,
        streaming: bool,
        n_train: int | None,
        n_val: int,
        val_split: str | None,
        prompt_format: str,
        response_format: str,
        template: Template | None,
        seq_len: int,
        seed: int,
        batch_size: int,
        num_workers: int,
    ) -> None:
        super().__init__()
        if val_split is None and n_train is None:
            raise ValueError(
                "data.n_train=null reads the whole split, so no rows are left to validate on: "
                "set data.val_split or data.n_train"
            )
        self.tokenizer, self.template = tokenizer, template or PlainTemplate()
        self.source = {"path": path, "name": name, "data_files": data_files, "streaming": streaming}
        self.split, self.val_split, self.n_train, self.n_val = split, val_split, n_train, n_val
        self.prompt_format, self.response_format = prompt_format, response_format
        self.seq_len, self.seed = seq_len, seed
        self.batch_size, self.num_workers = batch_size, num_workers
        self.train_set: PairDataset | None = None
        self.val_set: PairDataset | None = None

    def prepare_data(self) -> None:
        """Download a non-streamed dataset once (rank 0) so that every rank reads the cache."""
        if not self.source["streaming"]:
            read_rows(**self.source, split=self.split, limit=0)

    def _pairs(self, rows: Iterable[dict[str, Any]], what: str) -> list[Pair]:
        questions, answers = format_rows(rows, self.prompt_format, self.response_format)
        if not questions:
            raise ValueError(
                f"no {what} rows read from {self.source['path']} (split too short for "
                f"n_train={self.n_train} + n_val={self.n_val}?)"
            )
        tok, tpl = self.tokenizer, self.template
        prompts = [tpl.prompt(tok, q) for q in questions]
        responses = [tpl.response(tok, q, a) for q, a in zip(questions, answers, strict=True)]
        pairs = fitting_pairs(tok, prompts, responses, self.seq_len)
        log.info(
            "%s: %d examples, %d dropped (longer than seq_len=%d with one EoS)",
            what,
            len(pairs),
            len(prompts) - len(pairs),
            self.seq_len,
        )
        if not pairs:
            raise ValueError(f"no {what} example fits in seq_len={self.seq_len}")
        return pairs

    def setup(self, stage: str | None = None) -> None:
        """Read, format, template and length-filter both splits (once)."""
        if self.train_set is not None:
            return
        if self.val_split is None:
            rows = list(read_rows(**self.source, split=self.split, limit=self.n_train + self.n_val))
            train_rows, val_rows = rows[: self.n_train], rows[self.n_train :]
        else:
            train_rows = read_rows(**self.source, split=self.split, limit=self.n_train)
            val_rows = read_rows(**self.source, split=self.val_split, limit=self.n_val)
        self.train_set = PairDataset(self._pairs(train_rows, "train"))
        self.val_set = PairDataset(self._pairs(val_rows, "validation"))

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (seeded; a resumed stage resumes mid-epoch exactly)."""
        return shuffled_loader(
            self.train_set,
            self.batch_size,
            torch.Generator().manual_seed(self.seed),
            drop_last=True,
            collate_fn=SFTCollator(self.tokenizer, self.seq_len),
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        return DataLoader(
            self.val_set,
            batch_size=self.batch_size,
            collate_fn=SFTCollator(self.tokenizer, self.seq_len),
            num_workers=self.num_workers,
        )
