"""The embedded `toy` benchmark: seeded multi-step modular arithmetic with a chain of thought.

A problem is an expression evaluated left to right modulo `modulus`, e.g. `3+1*2-4` (mod 5).
The response states each running value once, then the answer after `####`:
`4;3;4####4` ("3+1=4; 4*2=3; 3-4=4"). Every running value depends on the previous one, so a
decoder that commits several of them in one step must guess the later ones before the earlier
ones are known: parallel decoding produces inconsistent chains (the paper's dependency errors).
Prompts are fixed-width (right-padded with `pad_char`), so operands sit at fixed positions.
Splits are disjoint by construction: a prompt is held out iff its CRC32 is divisible by
`holdout_every`; the train split rejects those prompts and the test split keeps only them.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from backplay_exp.benchmarks.base import Benchmark, Problem, Verdict

ANSWER_RE = re.compile(r"####\s*(\S+)")


@dataclass(frozen=True)
class ToyTask:
    """The problem distribution and the text format of the toy task.

    Attributes:
        modulus: Arithmetic modulus m (values are single digits, so m <= 10).
        min_steps: Fewest operations per problem.
        max_steps: Most operations per problem.
        ops: Allowed operators, a subset of "+-*" (multipliers are drawn from 1..m-1).
        prompt_step_format: Format of one operation in the prompt; fields {op}, {d}.
        step_format: Format of one chain-of-thought step; fields {op}, {d}, {r}.
        step_sep: Separator between steps.
        restate_start: Whether the response starts by restating the initial value.
        pad_char: Right-pads prompts to the width of a `max_steps` problem.
        holdout_every: One prompt in this many (by hash) belongs to the test split.
    """

    modulus: int = 5
    min_steps: int = 6
    max_steps: int = 6
    ops: str = "+-*"
    prompt_step_format: str = "{op}{d}"
    step_format: str = "{r}"
    step_sep: str = ";"
    restate_start: bool = False
    pad_char: str = "."
    holdout_every: int = 10

    def __post_init__(self) -> None:
        if not 2 <= self.modulus <= 10:
            raise ValueError(f"toy: modulus must be in 2..10, got {self.modulus}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError("toy: need 1 <= min_steps <= max_steps")
        if not self.ops or set(self.ops) - set("+-*"):
            raise ValueError(f"toy: ops must be a non-empty subset of '+-*', got {self.ops!r}")

    @property
    def prompt_width(self) -> int:
        """Characters in every prompt."""
        return 1 + len(self.prompt_step_format.format(op="+", d=0)) * self.max_steps

    def sample(self, rng: random.Random) -> tuple[str, str, str]:
        """Draw one problem: (prompt, response, answer)."""
        m = self.modulus
        value = rng.randrange(m)
        prompt, steps = [str(value)], []
        start = f"{value}{self.step_sep}" if self.restate_start else ""
        for _ in range(rng.randint(self.min_steps, self.max_steps)):
            op = rng.choice(self.ops)
            d = rng.randrange(1, m) if op == "*" else rng.randrange(m)
            value = {"+": value + d, "-": value - d, "*": value * d}[op] % m
            prompt.append(self.prompt_step_format.format(op=op, d=d))
            steps.append(self.step_format.format(op=op, d=d, r=value))
        prompt_text = "".join(prompt).ljust(self.prompt_width, self.pad_char)
        return prompt_text, f"{start}{self.step_sep.join(steps)}####{value}", str(value)

    def is_test(self, prompt: str) -> bool:
        """Whether `prompt` belongs to the held-out split."""
        return zlib.crc32(prompt.encode()) % self.holdout_every == 0

    def split(self, name: str, n: int, seed: int) -> list[Problem]:
        """`n` distinct problems of split `name` ("train" or "test") drawn with `seed`."""
        if name not in ("train", "test"):
            raise ValueError(f"toy: split must be 'train' or 'test', got {name!r}")
        want_test = name == "test"
        rng, seen, out = random.Random(seed), set(), []
        for _ in range(100 * n + 1000):
            if len(out) == n:
                break
            prompt, response, answer = self.sample(rng)
            if prompt in seen or self.is_test(prompt) != want_test:
                continue
            seen.add(prompt)
            out.append(
                Problem(
                    id=f"toy-{name}-{seed}-{len(out)}",
                    prompt=prompt,
                    answer=answer,
                    meta={"response": response},
                )
            )
        if len(out) < n:
            raise ValueError(
                f"toy: only {len(out)} distinct {name} problems found for n={n}; "
                "raise max_steps or modulus, or ask for fewer problems"
            )
        return out


def extract_answer(completion: str) -> str | None:
    """The text after the first `####`, or None."""
    match = ANSWER_RE.search(completion)
    return match.group(1) if match else None


class ToyBenchmark(Benchmark):
    """Held-out toy problems scored by exact match of the `####` answer.

    Args:
        task: The problem distribution.
        n_problems: Held-out problems to evaluate.
        seed: Seed of the test split.
        gen_length: Response canvas length.
        block_length: Block length.
        chat_template: Must stay false: toy prompts are plain text (the key exists so that a
            paper experiment that asks for chat prompts can be pointed at the toy benchmark).
    """

    name = "toy"
    convention = "worksheet"

    def __init__(
        self,
        task: ToyTask,
        n_problems: int,
        seed: int,
        gen_length: int,
        block_length: int,
        chat_template: bool = False,
    ) -> None:
        super().__init__(gen_length, block_length)
        if chat_template:
            raise ValueError(
                "benchmark=toy has plain-text prompts: set benchmark.chat_template=false "
                "(paper experiments set it true for LLaDA's chat-formatted SFT data)"
            )
        need = len(task.sample(random.Random(0))[1]) + 1  # longest response + one EoS
        if task.min_steps == task.max_steps and need > gen_length:
            raise ValueError(f"toy: responses need {need} tokens > gen_length={gen_length}")
        self.task, self.n_problems, self.seed = task, n_problems, seed

    def problems(self) -> list[Problem]:
        """The held-out split (disjoint from any training split by construction)."""
        return self.task.split("test", self.n_problems, self.seed)

    def score(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """Exact match of the extracted answer."""
        verdicts = []
        for problem, completion in zip(problems, completions, strict=True):
            got = extract_answer(completion)
            verdicts.append(Verdict(correct=got == problem.answer, extracted=got))
        return verdicts
