"""Every curl, Python and JavaScript block a reader would copy from README.md or docs/ is marked
as an example, and every example is run by some test."""

from __future__ import annotations

from cli.stack import PROJECT_ROOT
from doc_examples import doc_blocks, doc_examples

RUN = {"python", "py", "js", "javascript", "mjs"}
SHELL = {"sh", "bash", "shell", "console", ""}
# Pages other branches own, whose blocks their own tests run (the compose test starts the stack the
# page describes); left to them until they mark their blocks.
OWNED_ELSEWHERE = {"docs/deploy/compose.md", "docs/deploy/store-identities.md", "docs/security/access.md",
                   "docs/security/redis.md"}


def test_every_runnable_block_is_an_example():
    unmarked = [f"{path.relative_to(PROJECT_ROOT)}: {code.splitlines()[0]}" for path, name, lang, code in doc_blocks()
                if name is None and (lang in RUN or (lang in SHELL and "curl " in code))
                and str(path.relative_to(PROJECT_ROOT)) not in OWNED_ELSEWHERE]
    assert not unmarked, f"mark these <!-- example: NAME --> and run them in a test: {unmarked}"


def test_every_example_is_run_by_a_test():
    tests = "".join(path.read_text() for path in (PROJECT_ROOT / "tests").rglob("*.py")
                    if path.name not in ("doc_examples.py", "test_examples.py"))
    unused = [name for name in doc_examples() if f'"{name}"' not in tests]
    assert not unused, f"no test runs {unused}"
