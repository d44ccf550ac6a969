"""The code blocks of README.md that tests run, each marked by `<!-- example: NAME -->` on the
line before its fence, so what readers copy is what was tested."""

from __future__ import annotations

import re

from cli.stack import PROJECT_ROOT

_EXAMPLE = re.compile(r"^<!-- example: (?P<name>[\w.-]+) -->\n```[a-z]*\n(?P<code>.*?)^```$", re.M | re.S)


def readme_examples() -> dict[str, str]:
    return {match["name"]: match["code"] for match in _EXAMPLE.finditer((PROJECT_ROOT / "README.md").read_text())}


def readme_example(name: str) -> str:
    examples = readme_examples()
    if name not in examples:
        raise LookupError(f"README.md has no block marked <!-- example: {name} -->; it has {sorted(examples)}")
    return examples[name]
