"""The parts of the docs that are made from the code: `make docs` (or `.venv/bin/python -m scripts.docs`).

- docs/reference/configuration.md: one row per Settings field (its variable, default and what
  docker-compose.yml does with it); the meanings are kept from the page, by variable.
- docs/reference/errors.md: every error code the API, the relay, the workers and the CLI can give,
  with its statuses and meaning, from imgpipe/error_codes.py.
- docs/reference/cli.md: click's own help for every command.
- docs/design/sweeper.md: the table of the sweep's steps, from processor.housekeeping.STEPS.
- docs/reference/openapi.json: the OpenAPI document the API serves with the default settings.
- every `<!-- fig: FILE/PATH | FORMAT -->…<!-- /fig -->` in README.md and docs/: the figure at
  PATH of bench/FILE.json, so no measurement is copied by hand.

`--check` changes nothing and exits 1 when a file is not what it would write; tests/docs runs it.
"""

from __future__ import annotations

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

def errors_tables() -> tuple[str, str, str]:
    """The API's codes with their statuses, upload failures with what becomes of the original, and
    the CLI's own, each with its meaning, from imgpipe.error_codes."""
    from imgpipe.error_codes import ApiError, ClientFailure, UploadFailure

    api_rows = ["| code | HTTP | meaning |", "| --- | --- | --- |"]
    api_rows += [f"| `{code}` | {', '.join(map(str, code.statuses)) or 'any other'} | {code.meaning} |"
                 for code in sorted(ApiError)]
    failure_rows = ["| code | original | meaning |", "| --- | --- | --- |"]
    failure_rows += [f"| `{code}` | {code.original_afterwards} | {code.meaning} |" for code in sorted(UploadFailure)]
    client_rows = ["| code | meaning |", "| --- | --- |"]
    client_rows += [f"| `{code}` | {code.meaning} |" for code in sorted(ClientFailure)]
    return "\n".join(api_rows) + "\n", "\n".join(failure_rows) + "\n", "\n".join(client_rows) + "\n"


# Migrations ----------------------------------------------------------------------------------

def migrations_table() -> str:
    from imgpipe.uploads import MIGRATIONS

    return "\n".join(["| version | what it adds |", "| --- | --- |",
                      *(f"| {m.version} | {m.description} |" for m in MIGRATIONS)]) + "\n"


def setup_output() -> str:
    """What `imgpipe setup` prints on a new PostgreSQL database whose bucket and store identities
    were made before."""
    from imgpipe.uploads import MIGRATIONS

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
    api_table, failure_table, client_table = errors_tables()
    text = replace_generated(replace_generated(text, "api-errors", api_table), "upload-errors", failure_table)
    text = replace_generated(text, "client-errors", client_table)
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
