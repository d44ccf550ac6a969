"""The parts of the docs that are made from the code: `make docs` (or `.venv/bin/python -m scripts.docs`).

- docs/reference/configuration.md: one row per Settings field (its variable, default and what
  docker-compose.yml does with it); the meanings are kept from the page, by variable.
- docs/reference/errors.md: every error code the API, the relay and the workers can give, found in
  their source; the meanings are kept from the page, by code.
- docs/reference/cli.md: click's own help for every command.
- docs/design/sweeper.md: the table of the sweep's steps, from processor.housekeeping.STEPS.
- docs/reference/openapi.json: the OpenAPI document the API serves with the default settings.
- every `<!-- fig: FILE/PATH | FORMAT -->…<!-- /fig -->` in README.md and docs/: the figure at
  PATH of bench/FILE.json, so no measurement is copied by hand.

`--check` changes nothing and exits 1 when a file is not what it would write; tests/docs runs it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REGENERATE = "run `make docs` (or `.venv/bin/python -m scripts.docs`) and commit the result"
UNDESCRIBED = "(not described yet)"

_GENERATED = re.compile(r"(<!-- generated: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)
_FIGURE = re.compile(r"<!-- fig: (?P<paths>[^|>]+?) \| (?P<format>[^ >]+) -->(?P<value>.*?)<!-- /fig -->")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted(DOCS.rglob("*.md"))]


def replace_generated(text: str, name: str, body: str) -> str:
    """The text with the block marked `<!-- generated: name -->` holding `body`."""
    found = [match for match in _GENERATED.finditer(text) if match["name"] == name]
    if len(found) != 1:
        raise SystemExit(f"expected one <!-- generated: {name} --> block, found {len(found)}")
    match = found[0]
    return text[:match.start("body")] + body + text[match.end("body"):]


def generated_body(text: str, name: str) -> str:
    return next(match["body"] for match in _GENERATED.finditer(text) if match["name"] == name)


def table_meanings(body: str, column: int = -1) -> dict[str, str]:
    """What the hand-written column of a generated table says, by the code in its first cell."""
    meanings = {}
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        key = re.match(r"`([^`]+)`", cells[0]) if cells else None
        if key and len(cells) > 1:
            meanings[key[1]] = cells[column]
    return meanings


# Configuration ---------------------------------------------------------------------------------

def compose_settings(compose_file: Path) -> dict[str, str]:
    """NAME -> value of the variables docker-compose.yml's shared `x-…` blocks (the settings and
    each identity's keys) give the Python services."""
    found = {}
    for block in re.finditer(r"^x-[\w-]+: &[\w-]+\n((?:[ \t]+.*\n)+)", compose_file.read_text(), re.M):
        found.update(re.findall(r"^\s+([A-Z][A-Z0-9_]+):\s*(.*)$", block[1], re.M))
    return found


def _compose_cell(name: str, compose: dict[str, str]) -> str:
    value = compose.get(name)
    if value is None:
        return "not passed"
    if "${" + name in value:
        return "yours"
    given = re.search(r"\$\{([A-Z0-9_]+)", value)
    if given:
        return f"made from your `{given[1]}`"
    return f"fixed: `{value}`" if value else "fixed: empty"


def configuration_table(meanings: dict[str, str]) -> str:
    from imgpipe.settings import Settings, _env_name, env_value

    compose = compose_settings(ROOT / "docker-compose.yml")
    rows = ["| variable | default | docker compose | meaning |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(Settings):
        name = _env_name(field.name)
        spelled = env_value(field.name, field.default)
        default = "(empty)" if spelled == "" else f"`{spelled}`"
        rows.append(f"| `{name}` | {default} | {_compose_cell(name, compose)} | {meanings.get(name, UNDESCRIBED)} |")
    return "\n".join(rows) + "\n"


# Error codes -----------------------------------------------------------------------------------

# Calls whose arguments name an error code: (position of the code, position of the HTTP status or None).
_API_CALLS = {"RequestRejected": (1, 0), "TokenRefused": (1, 0), "Refused": (1, 0), "error_response": (1, 0)}
_FAILURE_CALLS = {"ImageRejected": (0, None), "_fail": (2, None), "mark_failed": (2, None),
                  "replace_failure": (2, None)}
SOURCES = ("api", "imgpipe", "processor")


def _constants(trees: list[ast.Module]) -> dict[str, str]:
    """Module-level NAME = "text" assignments, so a code held in a constant is found too."""
    found = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value
    return found


def _called(node: ast.Call) -> str | None:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)


def _positions(node: ast.Call) -> tuple[int | None, int | None]:
    """For a refusal class this does not know yet (…Rejected, …Refused): the first code-like
    text is its code, and an int before it its HTTP status (none: an upload's failure)."""
    code_at = status_at = None
    for index, arg in enumerate(node.args):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, int) and status_at is None:
            status_at = index
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and re.fullmatch(r"[a-z]+(_[a-z]+)*", arg.value):
            code_at = index
            break
    return code_at, status_at


def error_codes() -> tuple[dict[str, set[str]], set[str]]:
    """(API code -> the HTTP statuses it comes with, upload failure codes), read from the source."""
    trees = [ast.parse(path.read_text(), str(path)) for package in SOURCES for path in sorted((ROOT / package).rglob("*.py"))]
    constants = _constants(trees)

    def text(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    api: dict[str, set[str]] = {}
    failures: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (_called(node) in _API_CALLS | _FAILURE_CALLS
                                               or re.search(r"(rejected|refused)$", _called(node) or "", re.I)):
                code_at, status_at = (_API_CALLS | _FAILURE_CALLS).get(_called(node)) or _positions(node)
                code = text(node.args[code_at]) if code_at is not None and len(node.args) > code_at else None
                if code is None:
                    continue
                if status_at is None:
                    failures.add(code)
                else:
                    status = node.args[status_at]
                    api.setdefault(code, set()).add(str(status.value) if isinstance(status, ast.Constant) else "")
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_HTTP_CODES" for t in node.targets):
                for status, code in zip(node.value.keys, node.value.values):
                    api.setdefault(code.value, set()).add(str(status.value))
            elif (isinstance(node, ast.Call) and _called(node) == "get" and getattr(node.func.value, "id", "") == "_HTTP_CODES"):
                api.setdefault(node.args[1].value, set()).add("any other")
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if getattr(key, "value", None) == "code" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                        api.setdefault(value.value, set()).add("503")  # /healthz's own answer when something is down
    return {code: statuses - {""} for code, statuses in api.items()}, failures


def errors_tables(api_meanings: dict[str, str], failure_meanings: dict[str, str]) -> tuple[str, str]:
    api, failures = error_codes()
    api_rows = ["| code | HTTP | meaning |", "| --- | --- | --- |"]
    for code in sorted(api):
        statuses = ", ".join(sorted(api[code], key=lambda status: (not status.isdigit(), status)))
        api_rows.append(f"| `{code}` | {statuses} | {api_meanings.get(code, UNDESCRIBED)} |")
    failure_rows = ["| code | meaning |", "| --- | --- |"]
    failure_rows += [f"| `{code}` | {failure_meanings.get(code, UNDESCRIBED)} |" for code in sorted(failures)]
    return "\n".join(api_rows) + "\n", "\n".join(failure_rows) + "\n"


# Migrations ----------------------------------------------------------------------------------

def migrations_table() -> str:
    from imgpipe.db import MIGRATIONS

    return "\n".join(["| version | what it adds |", "| --- | --- |",
                      *(f"| {m.version} | {m.description} |" for m in MIGRATIONS)]) + "\n"


def setup_output() -> str:
    """What `imgpipe setup` prints on a new PostgreSQL database whose bucket and store identities
    were made before."""
    from imgpipe.db import MIGRATIONS

    lines = ["DATABASE_URL=postgresql://imgpipe:secret@db.internal:5432/imgpipe imgpipe setup",
             *(f"# Database (postgresql): applied migration {m.version}, {m.description}." for m in MIGRATIONS),
             "# Bucket and notification already configured.", "# Store identities already configured."]
    return "```sh\n" + "\n".join(lines) + "\n```\n"


# The sweep's steps -----------------------------------------------------------------------------

def housekeeping_steps_table() -> str:
    from processor.housekeeping import STEPS

    def runs(every: float) -> str:
        return "every sweep" if not every else f"every {every:g} s"

    return "\n".join(["| step | what it does | runs | bound per sweep |", "| --- | --- | --- | --- |",
                      *(f"| {step.name} | {' '.join(step.run.__doc__.split())} | {runs(step.every)} | {step.page} |"
                        for step in STEPS)]) + "\n"


# The CLI ---------------------------------------------------------------------------------------

def cli_reference() -> str:
    import click

    from cli.main import cli

    def help_of(command, name: str, parent=None) -> str:
        context = click.Context(command, info_name=name, parent=parent,
                                **{"terminal_width": 100, "max_content_width": 100, **command.context_settings})
        return command.get_help(context)

    root = click.Context(cli, info_name="imgpipe", terminal_width=100, max_content_width=100, **cli.context_settings)
    parts = ["# The `imgpipe` command\n",
             "Written by `make docs` from the commands' own `--help`; `imgpipe COMMAND --help` prints the same.\n",
             "```text\n" + help_of(cli, "imgpipe") + "\n```\n"]
    for name in sorted(cli.commands):
        parts.append(f"## imgpipe {name}\n\n```text\n{help_of(cli.commands[name], name, root)}\n```\n")
    return "\n".join(parts)


def openapi_document() -> str:
    from api.openapi import document_for
    from imgpipe.settings import Settings

    return json.dumps(document_for(Settings()), indent=2, ensure_ascii=False) + "\n"


# Figures ---------------------------------------------------------------------------------------

def _figure(paths: str, spec: str, cache: dict) -> str:
    """The value at each FILE/KEY/… path (several joined by " plus " are added up), formatted;
    "minutes" turns seconds into whole minutes."""
    values = []
    for path in paths.split(" plus "):
        file, *keys = path.strip().split("/")
        if file not in cache:
            cache[file] = json.loads((ROOT / "bench" / f"{file}.json").read_text())
        value = cache[file]
        for key in keys:
            value = value[int(key)] if isinstance(value, list) else value[key]
        values.append(value)
    value = sum(values) if len(values) > 1 else values[0]
    return f"{round(value / 60)}" if spec == "minutes" else format(value, spec)


def fill_figures(text: str) -> str:
    cache: dict = {}
    return _FIGURE.sub(lambda m: f"<!-- fig: {m['paths']} | {m['format']} -->{_figure(m['paths'], m['format'], cache)}"
                                 "<!-- /fig -->", text)


# All of it -------------------------------------------------------------------------------------

def rendered() -> dict[Path, str]:
    """Every file this writes, as it should be now."""
    files = {}
    configuration = DOCS / "reference" / "configuration.md"
    text = configuration.read_text()
    text = replace_generated(text, "configuration", configuration_table(table_meanings(generated_body(text, "configuration"))))
    files[configuration] = text

    errors = DOCS / "reference" / "errors.md"
    text = errors.read_text()
    api_table, failure_table = errors_tables(table_meanings(generated_body(text, "api-errors")),
                                             table_meanings(generated_body(text, "upload-errors")))
    text = replace_generated(replace_generated(text, "api-errors", api_table), "upload-errors", failure_table)
    files[errors] = text

    database = DOCS / "deploy" / "database.md"
    text = database.read_text()
    files[database] = replace_generated(replace_generated(text, "migrations", migrations_table()),
                                        "setup-output", setup_output())

    sweeper = DOCS / "design" / "sweeper.md"
    files[sweeper] = replace_generated(sweeper.read_text(), "housekeeping-steps", housekeeping_steps_table())

    files[DOCS / "reference" / "cli.md"] = cli_reference()
    files[DOCS / "reference" / "openapi.json"] = openapi_document()
    for path in markdown_files():
        files[path] = fill_figures(files.get(path, path.read_text()))
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in rendered().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path.relative_to(ROOT))
            if not check:
                path.write_text(text)
    if check and stale:
        print(f"out of date: {', '.join(map(str, stale))}; {REGENERATE}", file=sys.stderr)
        return 1
    if not check:
        print(f"wrote {', '.join(map(str, stale))}" if stale else "docs already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
