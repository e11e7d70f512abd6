"""What the code benchmarks share: pulling code out of a completion and running it sandboxed.

Extraction (EVALUATION.md): base models write code straight after the prompt (cut at the stop
strings); instruct/chatty models wrap it in prose and a fenced block, so the first fenced block
wins when there is one; otherwise, if the text does not parse, leading prose lines (before the
first `def`/`import`/`class`/...) and trailing prose lines are dropped until it does.
A benchmark builds one program per completion; `Sandbox` runs them in parallel and its verdict
(passed / failed / timed_out / crashed, with the reason) becomes the `detail` in samples.jsonl.
"""

from __future__ import annotations

import ast
import re
import warnings
from abc import abstractmethod
from collections.abc import Sequence

from backplay_exp.benchmarks.base import Problem, Verdict
from backplay_exp.benchmarks.dataset import DatasetBenchmark
from backplay_exp.benchmarks.sandbox import Sandbox

FENCE_RE = re.compile(r"```[ \t]*[\w+.-]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
CODE_START_RE = re.compile(r"^(?:def |async def |class |import |from |@)")


def first_fenced_block(text: str) -> str | None:
    """Content of the first ```` ``` ```` block (an unclosed one runs to the end), or None."""
    match = FENCE_RE.search(text)
    return match.group(1) if match else None


def parses(code: str) -> bool:
    """Whether `code` is syntactically valid Python (its compile warnings are not ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
        try:
            compile(code, "<completion>", "exec")
        except (SyntaxError, ValueError):
            return False
    return True


def extract_code(text: str) -> str:
    """The code in a completion: its first fenced block, else the text minus surrounding prose.

    Returns the text unchanged when no trimming makes it parse (the sandbox then reports the
    syntax error).
    """
    block = first_fenced_block(text)
    if block is not None:
        return block
    if parses(text):
        return text
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if CODE_START_RE.match(line)), None)
    if start is None:
        return text
    for end in range(len(lines), start, -1):
        candidate = "\n".join(lines[start:end])
        if parses(candidate):
            return candidate + "\n"
    return text


class _AssertToRaise(ast.NodeTransformer):
    """`assert test, msg` -> `if not test: raise AssertionError(msg or "<test source>")`."""

    def visit_Assert(self, node: ast.Assert) -> ast.If:
        message = node.msg or ast.Constant(ast.unparse(node.test))
        error = ast.Call(ast.Name("AssertionError", ast.Load()), [message], [])
        check = ast.If(ast.UnaryOp(ast.Not(), node.test), [ast.Raise(error)], [])
        return ast.copy_location(check, node)


def harden_asserts(tests: str) -> str:
    """The test code with its asserts turned into explicit raises.

    A program that re-executes itself with `python -O` would otherwise strip the asserts and
    pass; the raise also names the failing check in the verdict. Code that does not parse is
    returned unchanged (the sandbox reports the syntax error).
    """
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return tests
    return ast.unparse(ast.fix_missing_locations(_AssertToRaise().visit(tree)))


class CodeBenchmark(DatasetBenchmark):
    """A benchmark scored by running one program per completion in the sandbox.

    Subclasses build the program; `sandbox` is shared by every `score` call.
    """

    sandbox: Sandbox

    @abstractmethod
    def program(self, problem: Problem, code: str) -> str:
        """The program that passes iff `code` (extracted from the completion) is correct."""

    def extract(self, completion: str) -> str:
        """The code of a completion (the `extracted` field of samples.jsonl)."""
        return extract_code(completion)

    def score(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """Run every program in the sandbox; correct iff it passed."""
        codes = [self.extract(c) for c in completions]
        programs = [self.program(p, code) for p, code in zip(problems, codes, strict=True)]
        results = self.sandbox.run_many(programs)
        return [
            Verdict(correct=r.passed, extracted=code, detail=r.detail)
            for code, r in zip(codes, results, strict=True)
        ]
