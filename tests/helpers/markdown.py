"""Just enough Markdown for the docs tests (``tests/test_docs.py``): fenced blocks with the
HTML comment before each, headings and GitHub's anchors, inline code, links and tables.

Line numbers are kept (fenced blocks are blanked out of the prose, not removed), so a
failure can name ``docs/x.md:12``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_COMMENT = re.compile(r"<!--(.*?)-->", re.S)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)


@dataclass(frozen=True)
class Block:
    """A fenced code block."""

    doc: Path
    line: int  # 1-based, the opening fence
    lang: str
    text: str
    marker: str | None  # the HTML comment just before it ("not run: needs AWS"), if any

    @property
    def where(self) -> str:
        return f"{self.doc.name}:{self.line}"


@dataclass(frozen=True)
class Table:
    line: int
    heading: str  # the nearest heading above it
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def column(self, name: str) -> int | None:
        for i, cell in enumerate(self.header):
            if plain(cell).lower().startswith(name):
                return i
        return None


class Doc:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text("utf-8")
        self.blocks: list[Block] = []
        lines = self.text.split("\n")
        prose = list(lines)
        i = 0
        while i < len(lines):
            match = _FENCE.match(lines[i])
            if match is None:
                i += 1
                continue
            fence, indent = match["fence"], len(match["indent"])
            end = i + 1
            while end < len(lines) and not re.match(
                rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[end]
            ):
                end += 1
            body = [
                line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end]
            ]
            self.blocks.append(
                Block(path, i + 1, match["info"].lower(), "\n".join(body), _marker(lines, i))
            )
            for j in range(i, min(end + 1, len(lines))):
                prose[j] = ""
            i = end + 1
        self.prose = "\n".join(prose)  # fenced blocks blanked, line numbers kept

    @cached_property
    def headings(self) -> list[tuple[int, int, str]]:
        """(line, level, text) of every heading outside code blocks."""
        out = []
        for n, line in enumerate(self.prose.split("\n"), 1):
            match = _HEADING.match(line)
            if match:
                out.append((n, len(match[1]), match[2]))
        return out

    @cached_property
    def anchors(self) -> set[str]:
        seen: dict[str, int] = {}
        out = set()
        for _, _, text in self.headings:
            slug = github_slug(text)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            out.add(slug if count == 0 else f"{slug}-{count}")
        return out

    @cached_property
    def _prose_without_comments(self) -> str:
        return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), self.prose)

    def inline_code(self) -> list[tuple[int, str]]:
        """(line, text) of every code span in the prose (a span never crosses a blank line)."""
        text = self._prose_without_comments
        out = []
        for match in _CODE_SPAN.finditer(text):
            content = match.group(2)
            if "\n\n" in content:
                continue
            line = text.count("\n", 0, match.start()) + 1
            out.append((line, " ".join(content.split())))
        return out

    def links(self) -> list[tuple[int, str]]:
        """(line, target) of every inline link, image and reference definition in the prose."""
        text = _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), self._prose_without_comments)
        found = sorted([*_LINK.finditer(text), *_REFERENCE.finditer(text)], key=lambda m: m.start())
        return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in found]

    def tables(self) -> list[Table]:
        out: list[Table] = []
        heading = ""
        lines = self._prose_without_comments.split("\n")
        i = 0
        while i < len(lines):
            match = _HEADING.match(lines[i])
            if match:
                heading = match[2]
            if (
                lines[i].lstrip().startswith("|")
                and i + 1 < len(lines)
                and re.fullmatch(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*", lines[i + 1])
            ):
                table = Table(i + 1, heading, cells(lines[i]))
                i += 2
                while i < len(lines) and lines[i].lstrip().startswith("|"):
                    table.rows.append(cells(lines[i]))
                    i += 1
                out.append(table)
                continue
            i += 1
        return out

    def section(self, heading: str) -> tuple[int, int]:
        """The lines (first, last) under the heading whose text is ``heading``."""
        for n, level, text in self.headings:
            if text == heading:
                later = [m for m, lv, _ in self.headings if m > n and lv <= level]
                return n, (later[0] - 1 if later else self.text.count("\n") + 1)
        raise KeyError(heading)


def _marker(lines: list[str], fence: int) -> str | None:
    j = fence - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j >= 0:
        match = re.fullmatch(r"\s*<!--\s*(.*?)\s*-->\s*", lines[j])
        if match:
            return match[1]
    return None


def cells(line: str) -> list[str]:
    """A table row's cells; ``\\|`` stays inside its cell."""
    row = line.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)]


def plain(text: str) -> str:
    """Heading or cell text without Markdown: links to their text, no code ticks or stars."""
    return re.sub(r"[`*]", "", re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)).strip()


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation gone, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def code_spans(cell: str) -> list[str]:
    """The text of each code span in a table cell."""
    return [m.group(2).strip() for m in _CODE_SPAN.finditer(cell)]
