"""README is a short front door, and every relative link of the documentation
resolves: each file exists and each #anchor names a heading of its page, the
way GitHub makes anchors from headings."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 400

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target); a target may carry a "title" after it.
MARKDOWN_LINK = re.compile(
    r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pages() -> list[Path]:
    """Every page of the documentation: README, docs/ and the deploy files' page."""
    return [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "deploy" / "README.md"]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, code spans blanked."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text as rendered, lower case, with
    punctuation dropped and each space turned into a hyphen."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = (
        c
        for c in text
        if c in " -_" or unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Mn"
    )
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page`` (a repeated heading
    gets -1, -2, ...)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link and image of ``page`` outside code."""
    found = []
    for number, line in prose_lines(page.read_text()):
        for pattern in (MARKDOWN_LINK, HTML_LINK):
            found += [(number, m.group(1)) for m in pattern.finditer(line)]
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file or anchor does not exist."""
    broken = []
    for number, target in links(page):
        if SCHEME.match(target):
            continue  # a web address: not this test's to check offline
        path_part, _, fragment = target.partition("#")
        where = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{number}"
        linked = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{where}: {target}: no such file")
        elif fragment:
            if linked.suffix != ".md":
                broken.append(f"{where}: {target}: an anchor into a file that is not a page")
            elif unquote(fragment) not in anchors(linked):
                broken.append(f"{where}: {target}: no heading makes the anchor #{fragment}")
    return broken


def test_readme_is_a_short_front_door() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines; keep it at most {README_MAX_LINES} "
        "and move details to a page under docs/"
    )


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, "\n".join(broken)


# Where the project's files live: a code span starting with one of these
# names a file or folder of the checkout, and `python -m x.y` names a module.
PROJECT_DIRS = ("bench", "deploy", "docs", "meshdev", "meshkit", "orchestrator", "scripts")
PROJECT_DIRS += ("services", "soak", "tests", "workers")
MODULE = re.compile(r"python -m ([\w.]+)")


def missing_names(page: Path) -> list[str]:
    """The checkout's files, folders and modules that ``page`` names in code
    spans and that do not exist."""
    missing = []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        for span in (m.group(2).strip() for m in CODE_SPAN.finditer(line)):
            for module in MODULE.findall(span):
                base = ROOT / module.replace(".", "/")
                if not (base.with_suffix(".py").exists() or (base / "__main__.py").exists()):
                    missing.append(f"{page.name}:{number}: no module {module}")
            named = span.split("/", 1)[0] in PROJECT_DIRS and "/" in span
            placeholder = re.search(r"[\s<>*{}]", span)
            path = span.split(":", 1)[0]
            if named and not placeholder and not (ROOT / path).exists() and not output(path):
                missing.append(f"{page.name}:{number}: no file {span}")
    return missing


def output(path: str) -> bool:
    """Whether ``path`` is something a run writes (git ignores it): it exists
    only after that run, so a fresh clone lacks it."""
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", path], cwd=ROOT, check=False
    )
    return ignored.returncode == 0


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_and_module_a_page_names_exists(page: Path) -> None:
    missing = missing_names(page)
    assert not missing, "\n".join(missing)


def test_the_name_check_reports_what_does_not_exist(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "`meshkit/mesh.py` and `python -m workers.setup` exist;\n"
        "`meshkit/nowhere.py`, `python -m orchestrator.nothing` and `services/<team>/x.py`\n"
    )
    assert missing_names(page) == [
        "page.md:2: no file meshkit/nowhere.py",
        "page.md:2: no module orchestrator.nothing",
    ]


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    assert len(links(README)) > 10, "README's links were not found: the checks would prove nothing"
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in links(README)
        if not SCHEME.match(target)
    }
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"pages under docs/ that README does not link to: {unlinked}"


def test_anchors_are_made_as_github_makes_them() -> None:
    assert slug("Events pushed from the session") == "events-pushed-from-the-session"
    assert slug("The team's door: approvals and callers") == "the-teams-door-approvals-and-callers"
    assert (
        slug("Events and streaming (2026-11-22, `scripts/bench --quick`)")
        == "events-and-streaming-2026-11-22-scriptsbench---quick"
    )
    assert slug("The HTTP API and the web chat") == "the-http-api-and-the-web-chat"
    assert slug("Façade für [Nutzer](x.md)") == "façade-für-nutzer"


def test_the_check_reports_each_broken_link_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n\n## A section\n")
    (tmp_path / "picture.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "[fine](other.md#a-section) [repeated](other.md#a-section-1) [self](#page)\n"
        "[missing file](nowhere.md)\n"
        "[missing anchor](other.md#no-such-section)\n"
        "[missing own anchor](#nothing-here)\n"
        '<img src="missing.png" alt="x"> ![fine](picture.png) [web](https://example.com/x)\n'
        "```\n[inside a code block](ignored.md)\n```\n"
        "`[in a code span](ignored.md)` [anchor into a picture](picture.png#top)\n"
    )
    assert [
        b.split(": ", 1)[0].rsplit(":", 1)[1] + " " + b.split(": ")[1] for b in broken_links(page)
    ] == [
        "3 nowhere.md",
        "4 other.md#no-such-section",
        "5 #nothing-here",
        "6 missing.png",
        "10 picture.png#top",
    ]
