"""Every `python -m backplay_exp ...` command of README.md and docs/*.md composes (nothing runs).

The commands are read from fenced and indented code blocks and from inline code, with backslash
continuations joined, shell comments and what follows `&&`, `;` or `|` dropped, and `<...>`
placeholders (and `...`) replaced by a dummy value; each one is then composed in-process as
`python -m backplay_exp` would compose it (the root config of conf/, Hydra's own config included,
so `hydra.*` overrides and `hydra/launcher=...` count). A command-line sweep (`a,b`) composes
once per choice of each axis (the other axes at their first), and needs `-m` unless the config
sets `hydra.mode: MULTIRUN`, as Hydra demands; an experiment's own sweep axes are conf/'s and
composed by tests/config and tests/experiments. A
doc that ships config files of its own (`# file: conf/...` blocks, docs/decoding.md) composes
with them on Hydra's search path. `pytest -s` prints how many commands were checked, and so does
the terminal summary.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from tests.docs.examples import write_configs

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# below this many commands, the extractor has likely stopped finding them
MIN_COMMANDS = 40

COMMAND = re.compile(r"(?<![\w./-])python3? -m backplay_exp(?![\w.])")
PLACEHOLDER = re.compile(r"<[A-Za-z_][^<>\n]*?>")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
SHELL_STOP = {"&&", "||", ";", "|", "&", ">", ">>", "<", "(", ")"}
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path"}
FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--resolve", "--version"}
FILE_BLOCK = re.compile(r"```ya?ml\n# file: (conf/\S+)\n(.*?)```", re.S)


@dataclass
class Command:
    """One command found in a doc: where, its overrides, and what had to be filled in."""

    source: str
    line: int
    text: str
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    placeholders: int = 0

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def snippets(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every code block and inline code span of a markdown text."""
    lines = text.splitlines()
    found: list[tuple[int, str]] = []
    prose: list[tuple[int, str]] = []  # paragraphs of non-code lines
    i = 0
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            start, i = i, i + 1
            while i < len(lines) and not FENCE.match(lines[i]):
                i += 1
            found.append((start + 2, "\n".join(lines[start + 1 : i])))
            i += 1
            continue
        blank_before = i == 0 or not lines[i - 1].strip()
        if line.startswith("    ") and line.strip() and blank_before:
            start = i
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                i += 1
            found.append((start + 1, "\n".join(ln[4:] for ln in lines[start:i])))
            continue
        if line.strip():
            start = i
            while i < len(lines) and lines[i].strip() and not FENCE.match(lines[i]):
                i += 1
            prose.append((start + 1, "\n".join(lines[start:i])))
            continue
        i += 1
    for start, paragraph in prose:
        for match in CODE_SPAN.finditer(paragraph):
            line = start + paragraph[: match.start()].count("\n")
            found.append((line, match.group(2).replace("\n", " ").strip()))
    return found


def parse_command(text: str, source: str, line: int) -> Command:
    """The overrides of one command line (`text` starts at `python -m backplay_exp`)."""
    command = Command(source, line, text)
    filled, command.placeholders = PLACEHOLDER.subn("PLACEHOLDER", text)
    lexer = shlex.shlex(filled, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)[3:]  # past `python -m backplay_exp`
    args = iter(tokens)
    for token in args:
        if token in SHELL_STOP:
            break
        if token in ("-m", "--multirun"):
            command.multirun = True
        elif token in FLAGS_WITH_VALUE:
            next(args, None)
        elif token in FLAGS:
            continue
        elif token in ("...", "PLACEHOLDER"):
            command.placeholders += token == "..."  # a filled-in <...> is counted already
        elif token.startswith("-") and not token.startswith("--") and "=" not in token:
            raise ValueError(f"{source}:{line}: unknown flag {token!r} in: {text}")
        else:
            command.overrides.append(token)
    return command


def extract(text: str, source: str = "<text>") -> list[Command]:
    """Every `python -m backplay_exp` command of a markdown text."""
    commands = []
    for line, code in snippets(text):
        logical, first = "", 0  # a command continued over lines ending in a backslash
        for offset, code_line in enumerate(code.splitlines()):
            if not logical:
                first = offset
            if code_line.endswith("\\"):
                logical += code_line[:-1] + " "
                continue
            logical += code_line
            for match in COMMAND.finditer(logical):
                commands.append(parse_command(logical[match.start() :], source, line + first))
            logical = ""
    return commands


def doc_search_path(text: str, tmp: Path) -> list[str]:
    """A doc's own config files (`# file: conf/...` blocks) written under tmp, as an override."""
    files = FILE_BLOCK.findall(text)
    return [write_configs(files, tmp)] if files else []


@cache
def composed(overrides: tuple[str, ...]):
    """The composed config (Hydra's node included) of one set of overrides; cached.

    Runs inside the `conf` fixture's Hydra initialisation (one for the module).
    """
    return compose("config", overrides=list(overrides), return_hydra_config=True)


def compositions(command: Command, extra: list[str]) -> list[tuple[str, ...]]:
    """The override sets that stand for the command: one per choice of each sweep axis.

    Raises:
        ValueError: a command-line sweep without `-m` in a config that is not MULTIRUN.
    """
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(command.overrides)
    base = [o.input_line for o in parsed if not o.is_sweep_override()]
    axes = {
        o.key_or_group: [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        for o in parsed
        if o.is_sweep_override()
    }
    first = [choices[0] for choices in axes.values()]
    cfg = composed(tuple(extra + base + first))
    if axes and not command.multirun and cfg.hydra.mode != RunMode.MULTIRUN:
        raise ValueError(
            f"sweeps over {sorted(axes)} without -m, and the config is not MULTIRUN "
            "(Hydra refuses it: 'Ambiguous value for argument')"
        )
    sets = [tuple(extra + base + first)]
    for index, choices in enumerate(axes.values()):
        for choice in choices[1:]:
            sets.append(tuple(extra + base + [*first[:index], choice, *first[index + 1 :]]))
    return sets


def check(command: Command, extra: list[str]) -> int:
    """Compose every set that stands for the command; how many there were."""
    sets = compositions(command, extra)
    for overrides in sets:
        cfg = composed(overrides)
        assert cfg.task._target_, overrides
    return len(sets)


def collect() -> list[tuple[Command, Path]]:
    """Every command of the docs, with the doc it is in."""
    found = []
    for doc in DOCS:
        found += [(c, doc) for c in extract(doc.read_text(), doc.relative_to(ROOT).as_posix())]
    return found


COMMANDS = collect()


@pytest.fixture(scope="module", autouse=True)
def conf():
    """Hydra initialised on the project's conf/ for the whole module (composing is then cheap)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        yield


@pytest.fixture(scope="module")
def search_paths(tmp_path_factory):
    """Per doc, the override that puts its own config files on the search path (if any)."""
    out = {}
    for doc in DOCS:
        tmp = tmp_path_factory.mktemp(doc.stem)
        out[doc] = doc_search_path(doc.read_text(), tmp)
    return out


@pytest.mark.parametrize(("command", "doc"), COMMANDS, ids=[c.where for c, _ in COMMANDS])
def test_command_composes(command, doc, search_paths, record_property):
    record_property("doc_command", command.where)  # read by the terminal summary (conftest.py)
    record_property("doc_placeholders", command.placeholders)
    record_property("doc_compositions", check(command, search_paths[doc]))


def test_how_many_commands_were_checked(capsys):
    by_doc: dict[str, int] = {}
    for command, _ in COMMANDS:
        by_doc[command.source] = by_doc.get(command.source, 0) + 1
    placeholders = sum(c.placeholders > 0 for c, _ in COMMANDS)
    with capsys.disabled():
        print(
            f"\n{len(COMMANDS)} `python -m backplay_exp` commands in {len(by_doc)} files "
            f"({placeholders} with placeholders filled in): "
            + ", ".join(f"{doc} {n}" for doc, n in by_doc.items())
        )
    assert len(COMMANDS) >= MIN_COMMANDS
    assert "README.md" in by_doc


# --- the extractor and the check on hand-made markdown ------------------------------------------

SYNTHETIC = """\
Run `python -m backplay_exp task=eval remask=backplay` or this:

```bash
python -m backplay_exp +experiment=quickstart \\
    sampler.tokens_per_step=2   # a comment
python -m backplay_exp -m remask=confidence,backplay && echo done
python -m backplay_exp.report multirun/x    # another module: not a command
```

    python -m backplay_exp sft.checkpoint=<dir> --cfg job
"""


def test_the_extractor_reads_blocks_inline_code_and_continuations():
    commands = extract(SYNTHETIC, "synthetic.md")
    assert [c.overrides for c in commands] == [
        ["+experiment=quickstart", "sampler.tokens_per_step=2"],
        ["remask=confidence,backplay"],
        ["sft.checkpoint=PLACEHOLDER"],
        ["task=eval", "remask=backplay"],
    ]
    assert [c.multirun for c in commands] == [False, True, False, False]
    assert [c.placeholders for c in commands] == [0, 0, 1, 0]
    assert [c.line for c in commands] == [4, 6, 10, 1]


def test_every_synthetic_command_composes_and_a_sweep_composes_each_choice():
    counts = [check(c, []) for c in extract(SYNTHETIC, "synthetic.md")]
    # the -m sweep: one set per policy
    assert counts == [1, 2, 1, 1]


@pytest.mark.parametrize(
    "line",
    [
        "python -m backplay_exp sampler.no_such_key=1",
        "python -m backplay_exp remask=no_such_policy",
        "python -m backplay_exp -m remask=confidence,no_such_policy",
        "python -m backplay_exp remask=confidence,backplay",  # a sweep without -m
        "python -m backplay_exp +experiment=quickstart sampler.commit_threshold=0.9",
    ],
)
def test_a_wrong_key_or_option_fails_to_compose(line):
    (command,) = extract(f"```bash\n{line}\n```\n", "wrong.md")
    with pytest.raises(Exception, match=r"override|Could not|not found|-m|Ambiguous|In "):
        check(command, [])
