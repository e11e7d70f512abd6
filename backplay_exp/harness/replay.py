"""An lm-eval model that answers with given completions: score saved generations through lm-eval.

`ReplayLM(answer)` returns `answer(instance)` for each generation request, cut at the request's
`until` strings exactly as the `backplay` model cuts its own text (`generation.py`), so what
lm-eval's filters and metrics see is what they would see from a decoded completion. Used to
check lm-eval's scoring against the project's scorers on fixed texts (scripts/
lm_eval_gsm8k_agreement.py) and to run reference solutions through the sandbox route.
"""

from __future__ import annotations

from collections.abc import Callable

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM

from backplay_exp.harness.generation import cut_at_stops, stop_strings
from backplay_exp.harness.model import ROLLING


class ReplayLM(LM):
    """Generation requests answered by `answer(instance)`; no likelihoods.

    Args:
        answer: The completion of a request (it sees the document as `instance.doc`).
    """

    def __init__(self, answer: Callable[[Instance], str]) -> None:
        super().__init__()
        self.answer = answer

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Each request's given completion, cut at its `until` strings."""
        return [cut_at_stops(self.answer(r), stop_strings(r.args[1] or {})) for r in requests]

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list:
        """Not available: replayed texts have no likelihoods."""
        raise NotImplementedError("ReplayLM replays generations; it has no likelihoods")

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list:
        """Not available (see `model.ROLLING`)."""
        raise NotImplementedError(ROLLING)
