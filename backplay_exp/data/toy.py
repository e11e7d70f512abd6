"""Training data of the embedded toy task: the train split of the `toy` benchmark's generator."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset
from transformers import PreTrainedTokenizerBase

from backplay_exp.benchmarks.toy import ToyTask
from backplay_exp.data.collate import encode_sft_pairs
from backplay_exp.data.resumable import shuffled_loader

# encoded splits of this process, by (task, split, n, seed, response length, vocabulary)
_ENCODED: dict[tuple, TensorDataset] = {}


def _as_dicts(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    ids, resp = zip(*batch, strict=True)
    return {"input_ids": torch.stack(ids), "response_mask": torch.stack(resp)}


class ToyDataModule(L.LightningDataModule):
    """SFT batches of toy problems (prompt + chain of thought + `####` answer + EoS padding).

    Args:
        task: The problem distribution (shared with the `toy` benchmark).
        tokenizer: The backbone's tokenizer.
        response_len: Response canvas length (the benchmark's `gen_length`).
        n_train: Training problems (from the train side of the hash split).
        n_val: Validation problems (drawn from the held-out side with their own seed).
        seed: Seed of the training split.
        batch_size: Batch size.
    """

    def __init__(
        self,
        task: ToyTask | None,
        tokenizer: PreTrainedTokenizerBase,
        response_len: int,
        n_train: int,
        n_val: int,
        seed: int,
        batch_size: int,
    ) -> None:
        super().__init__()
        if task is None:
            raise ValueError(
                "data=toy trains on the toy task's generator, but this config has none: use "
                "benchmark=toy, set data.task, or pick a real SFT set (e.g. data=gsm8k_aug)"
            )
        self.task, self.tokenizer, self.response_len = task, tokenizer, response_len
        self.n_train, self.n_val, self.seed, self.batch_size = n_train, n_val, seed, batch_size
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def _encode(self, split: str, n: int, seed: int) -> TensorDataset:
        # the stages of one run (SFT, then head / joint / T2T) read the same splits: encode once
        vocab = tuple(sorted(self.tokenizer.get_vocab().items()))
        key = (repr(self.task), split, n, seed, self.response_len, vocab)
        if key not in _ENCODED:
            problems = self.task.split(split, n, seed)
            ids, resp = encode_sft_pairs(
                self.tokenizer,
                [p.prompt for p in problems],
                [p.meta["response"] for p in problems],
                self.response_len,
            )
            if len(_ENCODED) >= 4:  # a run's splits, not every config a test session saw
                _ENCODED.pop(next(iter(_ENCODED)))
            _ENCODED[key] = TensorDataset(ids, resp)
        return _ENCODED[key]

    def setup(self, stage: str | None = None) -> None:
        """Generate and tokenise both splits (deterministic in the seeds)."""
        if self.train_set is None:
            self.train_set = self._encode("train", self.n_train, self.seed)
            self.val_set = self._encode("test", self.n_val, self.seed + 1)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches, seeded (runs repeat, resumes go on exactly: resumable.py)."""
        g = torch.Generator().manual_seed(self.seed)
        return shuffled_loader(
            self.train_set, self.batch_size, g, drop_last=True, collate_fn=_as_dicts
        )

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        return DataLoader(self.val_set, batch_size=self.batch_size, collate_fn=_as_dicts)
