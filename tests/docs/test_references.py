"""The docs against the code: what `make docs` writes is current, every setting and error code is
described, links lead somewhere, and the statements that went stale before stay gone."""

from __future__ import annotations

import inspect
import re
import tomllib

import pytest

from cli.stack import PROJECT_ROOT
from doc_examples import doc_files
from scripts import docs

def test_what_make_docs_writes_is_current():
    stale = [str(path.relative_to(PROJECT_ROOT)) for path, text in docs.rendered().items()
             if not path.exists() or path.read_text() != text]
    assert not stale, f"out of date: {', '.join(stale)}; {docs.REGENERATE}"


@pytest.mark.parametrize("page", ["reference/configuration.md", "reference/errors.md"])
def test_every_row_is_described(page):
    undescribed = [line.split(" | ")[0].strip("| ") for line in (docs.DOCS / page).read_text().splitlines()
                   if docs.UNDESCRIBED in line]
    assert not undescribed, f"describe {', '.join(undescribed)} in docs/{page} (the last column; make docs keeps it)"


def test_every_setting_has_a_row():
    from imgpipe.settings import Settings, _env_name

    table = (docs.DOCS / "reference" / "configuration.md").read_text()
    for field in Settings.__dataclass_fields__:
        assert f"| `{_env_name(field)}` |" in table, f"{_env_name(field)} is missing; {docs.REGENERATE}"


def test_the_error_tables_are_the_enumeration_s():
    from imgpipe.error_codes import ApiError, UploadFailure

    text = (docs.DOCS / "reference" / "errors.md").read_text()
    api = docs.table_meanings(docs.generated_body(text, "api-errors"))
    failures = docs.table_meanings(docs.generated_body(text, "upload-errors"))
    assert api == {code.value: code.meaning for code in ApiError}, docs.REGENERATE
    assert failures == {code.value: code.meaning for code in UploadFailure}, docs.REGENERATE
    assert "| `too_large` | 400, 413 |" in text and "| `http_error` | any other |" in text
    assert "| `upload_expired` | none |" in text and "| `out_of_memory` | kept |" in text


def test_the_version_comes_from_pyproject():
    from imgpipe.version import VERSION

    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert VERSION == declared, "the installed metadata is older than pyproject.toml: run scripts/install_python.sh"
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    assert f"## {VERSION}" in changelog, f"CHANGELOG.md has no section for {VERSION}"


def test_the_presign_rounds_are_the_bench_s():
    from bench.presign import measure

    defaults = {name: parameter.default for name, parameter in inspect.signature(measure).parameters.items()}
    assert defaults == {"calls": 5000, "rounds": 5}
    page = (docs.DOCS / "design" / "store-enforced-size.md").read_text()
    assert "five rounds of\n5000 calls each" in page


def test_the_readme_is_short_and_links_lead_somewhere():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    missing = set()
    for path in [*doc_files(), PROJECT_ROOT / "CHANGELOG.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            resolved = (path.parent / target).resolve()
            if not resolved.exists():
                missing.add(str(resolved.relative_to(PROJECT_ROOT)))
    assert not missing, f"links to nothing: {sorted(missing)}"


def test_the_readme_answers_a_newcomer_s_questions():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for needle in ("make up", "IMGPIPE_MAX_UPLOAD_BYTES", "docs/deploy/many-hosts.md", "docs/operations/backup-and-restore.md",
                   "database_unavailable", "docs/operations/upgrading.md", "AGPL-3.0", "make clean", "MINIO_BIN",
                   "Python 3.11", "Go 1.24", "```mermaid"):
        assert needle in readme, needle
    assert 'id="503-database_unavailable"' in (docs.DOCS / "troubleshooting.md").read_text()


STALE = [
    "do not sign `Content-Length`",   # they do
    "size_required",                  # nothing raises it
    "never back",                     # reprocess --status failed moves failed to completed
    "this imgpipe needs 1:",          # there are several migrations
    "4½ minutes",                     # make bench takes longer; the figure is filled in
    "11 rounds",                      # bench.presign runs five
    "/result/` keep working",         # the singular paths need size like the plural ones
]


@pytest.mark.parametrize("statement", STALE)
def test_a_stale_statement_stays_gone(statement):
    found = [str(path.relative_to(PROJECT_ROOT)) for path in [*doc_files(), PROJECT_ROOT / "BENCHMARKS.md"]
             if statement in path.read_text()]
    assert not found, f"{statement!r} in {found}"


def test_the_batch_example_sends_every_size():
    from doc_examples import doc_example

    example = doc_example("batch.sh")
    entries = re.findall(r"\{\"filename\"[^}]*\}", example)
    assert len(entries) == 2 and all('"size":' in entry for entry in entries)


def test_every_metric_is_in_the_reference():
    source = (PROJECT_ROOT / "api" / "metrics.py").read_text()
    families = re.findall(r"MetricFamily\(\s*\"([a-z_]+)\"", source)
    assert len(families) >= 7
    page = (docs.DOCS / "reference" / "metrics.md").read_text()
    missing = [name for name in families if f"`{name}" not in page]
    assert not missing, f"describe {missing} in docs/reference/metrics.md"


def test_the_limits_page_gives_the_defaults():
    from imgpipe.settings import Settings

    defaults = Settings()
    page = (docs.DOCS / "reference" / "limits.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in page.splitlines()
            if line.startswith("| ") and " | " in line}
    assert rows["upload size"] == f"{defaults.max_upload_bytes // 2**20} MiB"
    assert rows["pixels"] == f"{defaults.max_pixels:,}"
    assert rows["files per batch"] == str(defaults.max_batch)
    assert rows["upload URL lifetime"] == f"{defaults.upload_url_ttl} s"
    assert rows["result URL lifetime"] == f"{defaults.result_url_ttl} s"
    assert rows["processing attempts"] == str(defaults.max_attempts)
    assert "64 * 1024" in (PROJECT_ROOT / "api" / "__init__.py").read_text() and rows["request body"] == "64 KiB"
