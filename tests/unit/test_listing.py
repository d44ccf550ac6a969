"""GET /uploads' query and cursor, without a server."""

import pytest

from api.listing import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor, parse_list_query
from api.validation import RequestRejected
from imgpipe.uploads import STATUSES

ROW = {"created_at": "2026-01-02T03:04:05.678901Z", "id": "ab" * 16}


def parse(**args):
    return parse_list_query({name: [value] for name, value in args.items()}, STATUSES)


def test_defaults_are_every_status_but_deleted_from_the_newest():
    query = parse()
    assert (query.status, query.flagged, query.limit, query.after) == (None, False, DEFAULT_LIMIT, None)
    assert (parse(flagged="true").flagged, parse(flagged="false").flagged) == (True, False)


def test_a_cursor_round_trips_to_the_row_it_came_from():
    cursor = encode_cursor(ROW)
    assert cursor == "20260102030405678901" + ROW["id"]
    assert decode_cursor(cursor) == (ROW["created_at"], ROW["id"])
    assert parse(status="failed", limit="7", cursor=cursor).after == (ROW["created_at"], ROW["id"])


def test_any_cursor_of_the_right_shape_is_a_position():
    assert decode_cursor("9" * 20 + "f" * 32) == ("9999-99-99T99:99:99.999999Z", "f" * 32)


@pytest.mark.parametrize("cursor", [
    "", "!!!", "20260102030405678901", "20260102030405678901" + "A" * 32, "2026010203040567890" + "a" * 33,
    "20260102030405678901" + "a" * 32 + "\n", "٢" * 20 + "a" * 32, "2026-01-02T03:04:05.678901Z " + "a" * 32,
])
def test_a_cursor_of_another_shape_is_400(cursor):
    with pytest.raises(RequestRejected) as info:
        parse(cursor=cursor)
    assert (info.value.status, info.value.code) == (400, "invalid_request")


@pytest.mark.parametrize("args", [
    {"status": ["done"]}, {"limit": ["0"]}, {"limit": [str(MAX_LIMIT + 1)]}, {"limit": ["-1"]},
    {"limit": ["ten"]}, {"limit": ["٣"]}, {"limit": ["1", "2"]}, {"page": ["2"]}, {"status": []},
    {"flagged": ["yes"]}, {"flagged": ["1"]}, {"flagged": ["true", "false"]},
])
def test_bad_parameters_are_400(args):
    with pytest.raises(RequestRejected) as info:
        parse_list_query(args, STATUSES)
    assert (info.value.status, info.value.code) == (400, "invalid_request")


def test_every_status_can_be_asked_for_deleted_included():
    for status in STATUSES:
        assert parse(status=status).status == status
    assert parse(limit=str(MAX_LIMIT)).limit == MAX_LIMIT
