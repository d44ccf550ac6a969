"""The code blocks of README.md and docs/ that tests run, each marked by `<!-- example: NAME -->`
on the line before its fence, so what readers copy is what was tested. tests/docs/test_examples.py
fails on a curl, Python or JavaScript block that is not marked, or marked and run by no test."""

from __future__ import annotations

import re
from pathlib import Path

from cli.stack import PROJECT_ROOT

_EXAMPLE = re.compile(r"^<!-- example: (?P<name>[\w.-]+) -->\n```[a-z]*\n(?P<code>.*?)^```$", re.M | re.S)
_BLOCK = re.compile(r"^(?:<!-- example: (?P<name>[\w.-]+) -->\n)?```(?P<lang>[a-z]*)\n(?P<code>.*?)^```$", re.M | re.S)


def doc_files() -> list[Path]:
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]


def doc_blocks() -> list[tuple[Path, str | None, str, str]]:
    """Every fenced block: (file, example name or None, language, code)."""
    return [(path, match["name"], match["lang"], match["code"])
            for path in doc_files() for match in _BLOCK.finditer(path.read_text())]


def doc_examples() -> dict[str, str]:
    examples = {}
    for path in doc_files():
        for match in _EXAMPLE.finditer(path.read_text()):
            if match["name"] in examples:
                raise LookupError(f"two blocks are marked <!-- example: {match['name']} -->")
            examples[match["name"]] = match["code"]
    return examples


def doc_example(name: str) -> str:
    examples = doc_examples()
    if name not in examples:
        raise LookupError(f"no block in README.md or docs/ is marked <!-- example: {name} -->; there are {sorted(examples)}")
    return examples[name]
