"""imgpipe.error_codes against the code that gives the codes (the API's, the workers' and the
CLI's): none is spelled out as text elsewhere, each member is given somewhere, and each API code
comes with the HTTP statuses it states."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from imgpipe.uploads import COLUMNS
from imgpipe.error_codes import ApiError, ClientFailure, UploadFailure

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("imgpipe", "api", "processor", "cli")
HOME = REPO_ROOT / "imgpipe" / "error_codes.py"
ENUMS = {"ApiError": ApiError, "UploadFailure": UploadFailure, "ClientFailure": ClientFailure}
# Calls that give an API error: (status, code, message), and those that record an upload's failure.
API_CALLS = {"RequestRejected", "TokenRefused", "DeliveryRefused", "PartsRefused", "Refused", "error_response"}
FAILURE_CALLS = {"ImageRejected", "_fail", "_refused", "mark_failed", "replace_failure"}


def sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path))
            for package in PACKAGES for path in sorted((REPO_ROOT / package).rglob("*.py")) if path != HOME}


SOURCES = sources()


def member(node: ast.AST) -> ApiError | UploadFailure | ClientFailure | None:
    """The member `node` names, as ApiError.NAME, UploadFailure.NAME or ClientFailure.NAME."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ENUMS:
        return ENUMS[node.value.id][node.attr]
    return None


def called(node: ast.Call) -> str | None:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)


def health_states(tree: ast.Module) -> set[int]:
    """Texts under a "status" key: /healthz's own state ("ok", "unavailable"), not an error code."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "status":
                    found |= {id(inner) for inner in ast.walk(value)}
    return found


def column_names(path: Path, tree: ast.Module) -> set[int]:
    """A column of the uploads table spelled like a code (multipart_part_size): in imgpipe/uploads.py,
    which defines the table, and as a row's index anywhere."""
    if path == REPO_ROOT / "imgpipe" / "uploads.py":
        return {id(node) for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in COLUMNS}
    return {id(node.slice) for node in ast.walk(tree) if isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant) and node.slice.value in COLUMNS}


def delivery_categories(path: Path, tree: ast.Module) -> set[int]:
    """Why a webhook try failed (imgpipe/webhook_errors.py): a vocabulary of its own, stored on a
    delivery record, whose "timeout" is not the CLI's code."""
    if path == REPO_ROOT / "imgpipe" / "webhook_errors.py":
        return {id(node) for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    return set()


def test_no_code_is_spelled_out_as_text_outside_the_enumeration():
    codes = {str(code) for code in [*ApiError, *UploadFailure, *ClientFailure]}
    spelled = []
    for path, tree in SOURCES.items():
        not_codes = health_states(tree) | column_names(path, tree) | delivery_categories(path, tree)
        spelled += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and node.value in codes and id(node) not in not_codes]
    assert not spelled, "use the imgpipe.error_codes member instead of:\n" + "\n".join(spelled)


def given() -> set:
    """Every member passed to a call or held as a dict's value: raised, returned, recorded or answered."""
    found = set()
    for tree in SOURCES.values():
        for node in ast.walk(tree):
            values = node.args if isinstance(node, ast.Call) else node.values if isinstance(node, ast.Dict) else []
            found |= {member(value) for value in values} - {None}
    return found


@pytest.mark.parametrize("enum", [ApiError, UploadFailure, ClientFailure], ids=lambda enum: enum.__name__)
def test_every_member_is_given_somewhere(enum):
    never = sorted(set(enum) - given())
    assert not never, f"nothing gives {', '.join(map(str, never))}: remove it from imgpipe.error_codes"


def test_each_api_code_comes_with_the_statuses_it_states():
    wrong = []
    for path, tree in SOURCES.items():
        for node in ast.walk(tree):
            pairs = []
            if isinstance(node, ast.Call) and called(node) in API_CALLS and len(node.args) >= 2:
                pairs.append((node.args[0], node.args[1]))
            if isinstance(node, ast.Dict):
                pairs += zip(node.keys, node.values)
            for status, code in pairs:
                code = member(code)
                if isinstance(code, ApiError) and isinstance(status, ast.Constant) and isinstance(status.value, int):
                    if code.statuses and status.value not in code.statuses:
                        wrong.append(f"{path.relative_to(REPO_ROOT)}:{status.lineno}: {code} with {status.value}")
    assert not wrong, "a status imgpipe.error_codes does not list:\n" + "\n".join(wrong)


def test_api_codes_are_answered_and_failure_codes_recorded_never_the_other_way():
    crossed = []
    for path, tree in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called(node) in API_CALLS | FAILURE_CALLS:
                wanted = ApiError if called(node) in API_CALLS else UploadFailure
                crossed += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {called(node)}({code!r})"
                            for code in map(member, node.args) if code is not None and not isinstance(code, wanted)]
    assert not crossed, "\n".join(crossed)


def test_the_groupings():
    removed = {code for code in UploadFailure if code.rejects_content}
    assert {code for code in UploadFailure if code.stored_otherwise} < removed
    assert {"empty_file", "not_an_image", "corrupt_image", "too_large", "too_many_pixels",
            "unsupported_format"} < removed
    assert {code for code in UploadFailure if code.leaves_no_original} == removed | {"missing_original",
                                                                                      "upload_expired",
                                                                                      "upload_aborted"}
    kept = {code for code in UploadFailure if code.original_afterwards == "kept"}
    assert kept == {"internal", "out_of_memory", "rejected_by_moderation"}


def test_a_member_is_its_code():
    assert ApiError.NOT_FOUND == "not_found" and f"{UploadFailure.UPLOAD_EXPIRED}" == "upload_expired"
    assert UploadFailure.recorded("corrupt_image") is UploadFailure.CORRUPT_IMAGE
    assert UploadFailure.recorded("no_longer_given") is None and UploadFailure.recorded(None) is None


@pytest.mark.parametrize("code", [*ApiError, *UploadFailure, *ClientFailure],
                         ids=lambda code: f"{type(code).__name__}.{code.name}")
def test_every_code_has_a_one_line_meaning(code):
    assert code.meaning and "\n" not in code.meaning and code.name == code.value.upper()


def test_the_upload_page_words_only_codes_that_exist():
    """api/static/upload.js words each code for people; its own (the network failing) aside, a
    code renamed here must be renamed there. A PUT the store refuses is upload_failed there, as it
    is for the CLI."""
    script = (REPO_ROOT / "api" / "static" / "upload.js").read_text()
    table = re.search(r"const ERROR_WORDS = \{(.*?)\n\};", script, re.S)[1]
    worded = set(re.findall(r"^\s+(\w+):", table, re.M))
    assert worded - {"network_error"} <= {str(code) for code in [*ApiError, *UploadFailure, *ClientFailure]}
    assert "upload_failed" in worded
    assert {"unsupported_media_type", "not_an_image", "upload_expired"} <= worded
