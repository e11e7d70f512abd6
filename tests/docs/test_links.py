"""Every relative link of README.md and docs/*.md resolves inside the repository.

Markdown links and images (`[text](target)`, `![alt](target)`, `[id]: target`) outside code:
web links are left alone; any other target must be a path relative to the doc, resolve to an
existing file or directory of the repository, and not leave it (no `../shared/...`, no absolute
path, no `file://`). An `#anchor` must name a heading of the page it points to (GitHub's slugs).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.S | re.M)
INDENTED = re.compile(r"(?:^|\n\n)((?: {4}.*(?:\n|$))+)")
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML = re.compile(r"<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\"", re.I)
WEB = ("http://", "https://", "mailto:")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without its code blocks and inline code (links in code are not links)."""
    text = FENCE.sub("", text)
    text = INDENTED.sub("\n\n", text)
    return CODE_SPAN.sub("", text)


def links(text: str) -> list[str]:
    """Every link target of a markdown text, outside code."""
    body = prose(text)
    return [m for pattern in (INLINE, REFERENCE, HTML) for m in pattern.findall(body)]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Anchors of a page's headings, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def problem(doc: Path, target: str, root: Path = ROOT) -> str | None:
    """Why a link target of `doc` is broken, or None if it resolves inside `root`."""
    if target.startswith(WEB):
        return None
    path, _, anchor = target.partition("#")
    path = unquote(path)
    if target.startswith("file:") or Path(path).is_absolute() or path.startswith("~"):
        return "an absolute path: links must be relative to the page"
    resolved = (doc.parent / path).resolve() if path else doc
    if not resolved.is_relative_to(root.resolve()):
        return "points outside the repository"
    if not resolved.exists():
        return "no such file or directory"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
        return f"no heading #{anchor} in {resolved.relative_to(root.resolve())}"
    return None


def all_links() -> list[tuple[Path, str]]:
    return [(doc, target) for doc in DOCS for target in links(doc.read_text())]


LINKS = all_links()


def test_the_docs_have_links():
    assert len(LINKS) >= 10, LINKS


@pytest.mark.parametrize(
    ("doc", "target"), LINKS, ids=[f"{d.relative_to(ROOT)}->{t}" for d, t in LINKS]
)
def test_link_resolves_inside_the_repository(doc, target):
    found = problem(doc, target)
    assert found is None, f"{doc.relative_to(ROOT)}: ({target}): {found}"


SYNTHETIC = """\
# A page

See [the guide](guide.md), [its part](guide.md#the-part) and ![plot](img/plot.png),
[a site](https://example.org), [here](#a-page) and [ref][r]. In code, `[x](nowhere.md)`:

```
[y](nowhere.md)
```

[r]: sub/
"""


def test_links_of_a_hand_made_tree(tmp_path):
    (tmp_path / "docs" / "img").mkdir(parents=True)
    (tmp_path / "docs" / "sub").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## The part\n")
    (tmp_path / "docs" / "img" / "plot.png").write_bytes(b"")
    page = tmp_path / "docs" / "page.md"
    page.write_text(SYNTHETIC)
    found = links(SYNTHETIC)
    assert found == [
        "guide.md",
        "guide.md#the-part",
        "img/plot.png",
        "https://example.org",
        "#a-page",
        "sub/",
    ]
    assert [problem(page, t, tmp_path) for t in found] == [None] * 6
    outside = tmp_path / "outside.md"
    outside.write_text("")
    assert problem(page, "../../outside.md", tmp_path / "docs") == "points outside the repository"
    assert problem(page, "missing.md", tmp_path) == "no such file or directory"
    assert problem(page, "guide.md#nope", tmp_path).startswith("no heading #nope")
    assert problem(page, "/etc/passwd", tmp_path).startswith("an absolute path")
    assert problem(page, "file:///etc/passwd", tmp_path).startswith("an absolute path")
