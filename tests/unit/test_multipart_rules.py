"""The part-size rules and the complete's checks, as pure code."""

from __future__ import annotations

import pytest

from imgpipe.multipart import (DEFAULT_PART_SIZE, MAX_PART_SIZE, MAX_PARTS, MIB, MIN_PART_SIZE, Part, PartsRefused,
                               check_parts, plan_parts, wants_multipart)


@pytest.mark.parametrize("size", [1, MIN_PART_SIZE, DEFAULT_PART_SIZE, DEFAULT_PART_SIZE + 1, 100 * MIB,
                                  DEFAULT_PART_SIZE * MAX_PARTS, DEFAULT_PART_SIZE * MAX_PARTS + 1, 5 * 1024 ** 4])
def test_every_plan_keeps_to_s3s_rules_and_adds_up_to_the_size(size):
    plan = plan_parts(size)
    lengths = [plan.length(number) for number in range(1, plan.count + 1)]
    assert sum(lengths) == size
    assert 1 <= plan.count <= MAX_PARTS
    assert all(MIN_PART_SIZE <= length <= MAX_PART_SIZE for length in lengths[:-1])
    assert 1 <= lengths[-1] <= plan.part_size <= MAX_PART_SIZE


def test_parts_are_8_mib_until_a_file_would_need_more_than_10000():
    assert plan_parts(100 * MIB).part_size == DEFAULT_PART_SIZE and plan_parts(100 * MIB).count == 13
    assert plan_parts(DEFAULT_PART_SIZE * MAX_PARTS).part_size == DEFAULT_PART_SIZE
    assert plan_parts(DEFAULT_PART_SIZE * MAX_PARTS + 1).part_size == 2 * DEFAULT_PART_SIZE
    assert plan_parts(10 * MIB, part_size=MIB).part_size == MIN_PART_SIZE  # never below S3's least


@pytest.mark.parametrize("size", [0, -1, MAX_PART_SIZE * MAX_PARTS + 1])
def test_a_size_no_multipart_upload_can_hold_is_refused(size):
    with pytest.raises(ValueError):
        plan_parts(size)


def test_part_numbers_outside_the_plan_have_no_length():
    plan = plan_parts(20 * MIB)
    for number in (0, plan.count + 1, -1):
        with pytest.raises(ValueError):
            plan.length(number)


def test_multipart_is_asked_for_or_follows_the_threshold_and_never_for_an_empty_file():
    threshold = 16 * MIB
    assert not wants_multipart(None, threshold - 1, threshold) and wants_multipart(None, threshold, threshold)
    assert wants_multipart(True, 1, threshold) and not wants_multipart(False, 10 * threshold, threshold)
    assert not wants_multipart(True, 0, threshold) and not wants_multipart(None, 0, 0)


def parts_of(plan, sizes=None, etags=None):
    sizes = sizes or [plan.length(number) for number in range(1, plan.count + 1)]
    return [Part(number, size, (etags or {}).get(number, f"etag{number}")) for number, size in enumerate(sizes, 1)]


def named(parts):
    return [Part(part.number, -1, f'"{part.etag}"') for part in parts]


def refusal(plan, stored, asked) -> str:
    with pytest.raises(PartsRefused) as refused:
        check_parts(plan, stored, asked)
    return refused.value.code


def test_the_store_s_parts_in_order_are_completed_when_they_are_exactly_the_plan():
    plan = plan_parts(20 * MIB)
    stored = parts_of(plan)
    assert check_parts(plan, list(reversed(stored)), named(stored)) == stored
    assert check_parts(plan, stored + [Part(plan.count + 1, 5, "extra")], named(stored)) == stored


def test_a_part_missing_at_the_store_of_the_wrong_size_or_named_otherwise_is_refused():
    plan = plan_parts(20 * MIB)
    stored = parts_of(plan)
    assert refusal(plan, stored[:-1], named(stored)) == "multipart_parts_missing"
    assert refusal(plan, stored[1:], named(stored)) == "multipart_parts_missing"
    short = parts_of(plan, sizes=[plan.part_size - 1, plan.part_size, plan.length(3)])
    assert refusal(plan, short, named(short)) == "multipart_part_size"
    assert refusal(plan, stored, named(stored)[:-1]) == "multipart_parts_invalid"
    assert refusal(plan, stored, named(stored) + named(stored)[:1]) == "multipart_parts_invalid"
    other = parts_of(plan, etags={2: "someone-elses"})
    assert refusal(plan, stored, named(other)) == "multipart_etag_mismatch"
