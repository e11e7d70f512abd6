"""Write docs/config.md, the configuration reference, from the YAML files under conf/.

Every config group (a directory of conf/) and every option (a YAML file in it) is listed with the
option's leading comment lines as its description, its `defaults` list and a table of its keys:
the value as written in the file and the comment lines right above the key. Nothing is composed:
the page shows each file as it stands, so an option that inherits from another (`defaults:`) shows
only what it sets itself.

    python scripts/config_reference.py            # rewrite docs/config.md
    python scripts/config_reference.py --check    # exit 1 if docs/config.md is not up to date
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF, OUT = ROOT / "conf", ROOT / "docs" / "config.md"
KEY = re.compile(r"^(?P<key>[^\s#:\-\[{][^:]*?|'[^']*'|\"[^\"]*\"):(?:\s+(?P<value>.*))?$")
BLOCK_SCALAR = {">", ">-", "|", "|-", ">+", "|+"}

# how an option of a group is chosen on the command line, where it is not `group=NAME`
SELECTED_BY = {
    "": "always loaded (the root of every composition)",
    "experiment": "`+experiment=NAME` (experiments are appended, not in the root defaults)",
    "experiment/base": "the `defaults` of the paper-table experiments",
    "artifact_preset": "automatically: `<artifact>_<benchmark>` where that file exists",
    "claims": "an experiment's `/claims@hydra.callbacks.report.claims: NAME` default",
    "module": "`module@sft.module=NAME`, `module@head_train.module=NAME`, ... (one per stage)",
    "lora": "`+lora@joint.lora=NAME` or `+lora@t2t.lora=NAME`",
    "benchmark/sandbox": "`lm_eval.sandbox` (task=lm_eval) and the code benchmarks' defaults",
    "hydra": "the root defaults (`hydra: default`): run and sweep directories, logging",
    "hydra/callbacks": "an experiment's `override /hydra/callbacks: NAME`",
    "trainer": "`trainer=NAME`; a stage's own: `trainer@head_train.trainer=NAME`",
}


@dataclass
class Entry:
    """One key of an option file: its dotted path, value as written, and comment."""

    path: str
    value: str
    comment: str


@dataclass
class Option:
    """One YAML file of a group."""

    name: str
    path: Path
    description: str = ""
    package: str | None = None
    defaults: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)


def indent_of(line: str) -> int:
    """Leading spaces of a line."""
    return len(line) - len(line.lstrip(" "))


def block_end(lines: list[str], start: int, indent: int, list_items: bool) -> int:
    """Index of the first line after `start` that ends the block of a key at `indent`.

    Lines more indented than the key (and, for a list, items at the key's own indent) belong to
    it; blank and comment lines inside are skipped over.
    """
    end = start
    for j in range(start, len(lines)):
        s = lines[j].strip()
        if not s or s.startswith("#"):
            continue
        inside = indent_of(lines[j]) > indent or (list_items and s.startswith("- "))
        if not inside:
            break
        end = j + 1
    return end


def list_value(items: list[str]) -> str:
    """A block list as one line: `[a, b]`, or a count when its items are mappings."""
    if any(re.match(r"^[\w@/.$]+\s*:\s", item) and not item.startswith("{") for item in items):
        return f"(a list of {len(items)} " + ("entry)" if len(items) == 1 else "entries)")
    return "[" + ", ".join(items) + "]"


def parse(path: Path, name: str) -> Option:
    """An option file's description, package, defaults and keys (see the module docstring)."""
    option = Option(name=name, path=path)
    lines = path.read_text().splitlines()
    header, pending, stack = [], [], []  # stack: (indent, key) of the open mappings
    in_header, i = True, 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        i += 1
        if not stripped:
            in_header = in_header and not header
            pending = []
            continue
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if text.startswith("@package"):
                option.package = text.split(None, 1)[1] if " " in text else None
            elif in_header:
                header.append(text)
            else:
                pending.append(text)
            continue
        in_header = False
        match = KEY.match(stripped)
        if stripped.startswith("- ") or not match:
            continue  # inside a list or a multi-line value already read
        indent, key = indent_of(line), match["key"]
        value = (match["value"] or "").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        nxt = next((ln for ln in lines[i:] if ln.strip() and not ln.strip().startswith("#")), "")
        if not value and nxt.strip().startswith("- ") and indent_of(nxt) >= indent:
            end = block_end(lines, i, indent, list_items=True)
            items = [
                ln.strip()[2:].strip()
                for ln in lines[i:end]
                if ln.strip().startswith("- ") and indent_of(ln) == indent_of(nxt)
            ]
            if dotted == "defaults":
                option.defaults = items
            else:
                option.entries.append(Entry(dotted, list_value(items), " ".join(pending)))
            i, pending = end, []
            continue
        if not value and indent_of(nxt) > indent:  # a mapping: its keys follow
            if pending:
                option.entries.append(Entry(dotted, "", " ".join(pending)))
            stack.append((indent, key))
            pending = []
            continue
        if value in BLOCK_SCALAR:
            end = block_end(lines, i, indent, list_items=False)
            value = " ".join(ln.strip() for ln in lines[i:end] if ln.strip())
            i = end
        option.entries.append(Entry(dotted, value, " ".join(pending)))
        pending = []
    option.description = "\n".join(header)
    return option


def cell(text: str, code: bool = False) -> str:
    """Text for a markdown table cell (pipes escaped; `code` wraps it in backticks)."""
    text = text.replace("|", "\\|")
    if code and text:
        fence = "``" if "`" in text else "`"
        pad = " " if "`" in text else ""
        return f"{fence}{pad}{text}{pad}{fence}"
    return text


def group_dirs() -> list[str]:
    """Every directory of conf/ that holds YAML files, relative, sorted ("" = conf/ itself)."""
    dirs = {str(p.parent.relative_to(CONF)) for p in CONF.rglob("*.yaml")}
    return sorted("" if d == "." else d for d in dirs)


def default_choices(defaults: list[str], prefix: str = "") -> dict[str, str]:
    """Group -> option of a defaults list's plain `group: option` entries (`prefix` + group)."""
    chosen = {}
    for item in defaults:
        match = re.match(r"^([\w/]+)\s*:\s*(\S+)$", item)
        if match and match[2] != "null":
            chosen[prefix + match[1]] = match[2]
    return chosen


def root_defaults(groups: list[str]) -> dict[str, str]:
    """Group -> its default option: conf/config.yaml's, and a sub-group's from its parent's."""
    chosen = default_choices(parse(CONF / "config.yaml", "config").defaults)
    for group in groups:
        parent, _, _ = group.rpartition("/")
        if parent and parent in chosen and (CONF / parent / f"{chosen[parent]}.yaml").exists():
            option = parse(CONF / parent / f"{chosen[parent]}.yaml", chosen[parent])
            for key, value in default_choices(option.defaults, parent + "/").items():
                chosen.setdefault(key, value)
    return chosen


def render_option(option: Option, group: str) -> list[str]:
    """The markdown of one option: heading, description, defaults, key table."""
    title = "`conf/config.yaml`" if not group else f"`{group}/{option.name}`"
    rel = option.path.relative_to(ROOT).as_posix()
    out = [f"### {title}", ""]
    out.append(option.description or "(no description in the file)")
    out.append("")
    facts = [f"file: [`{rel}`](../{rel})"]
    if option.package:
        facts.append(f"package: `{option.package}`")
    if option.defaults:
        facts.append("defaults: " + ", ".join(f"`{d}`" for d in option.defaults))
    out += ["; ".join(facts), ""]
    if option.entries:
        out += ["| key | value | note |", "|---|---|---|"]
        for e in option.entries:
            out.append(f"| `{e.path}` | {cell(e.value, code=True)} | {cell(e.comment)} |")
        out.append("")
    return out


def render() -> str:
    """The whole page."""
    groups = group_dirs()
    defaults = root_defaults(groups)
    out = [
        "# Configuration reference",
        "",
        "<!-- generated by scripts/config_reference.py from conf/: do not edit by hand -->",
        "",
        "Every config group under `conf/` and every option in it, with the option's own comment as",
        "its description and each key as the file writes it (the comment above a key is its note).",
        "An option that starts from another (`defaults:`) lists only what it changes. The composed",
        "config of a command is printed by `python -m backplay_exp <overrides> --cfg job`.",
        "Regenerate this page with `python scripts/config_reference.py` after editing `conf/`",
        "(a test runs it with `--check`).",
        "",
        "| group | options | default | chosen with |",
        "|---|---|---|---|",
    ]
    for group in groups:
        names = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        label = "(root)" if not group else f"[`{group}`](#{anchor(group)})"
        chosen = SELECTED_BY.get(group, f"`{group}=NAME`")
        default = f"`{defaults[group]}`" if group in defaults else ""
        out.append(f"| {label} | {', '.join(names)} | {default} | {chosen} |")
    out.append("")
    for group in groups:
        if group:
            out += [f"## {group}", ""]
        else:
            out += ["## Root config", ""]
        for path in sorted((CONF / group).glob("*.yaml")):
            out += render_option(parse(path, path.stem), group)
    return "\n".join(out).rstrip() + "\n"


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, spaces -> -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    """Write docs/config.md, or with --check report whether it is up to date (exit 1 if not)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/config.md is stale")
    parser.add_argument("--out", type=Path, default=OUT, help="the page to write or check")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != page:
            print(f"{args.out} is stale: run python scripts/config_reference.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(page)
    print(f"wrote {args.out} ({page.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
