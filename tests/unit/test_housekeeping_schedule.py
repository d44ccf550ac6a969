"""The sweep's steps as data: each runs at its own cadence, in the order STEPS lists them."""

from __future__ import annotations

from processor.housekeeping import STEPS, Schedule, Step


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def names(schedule: Schedule) -> list[str]:
    return [step.name for step in schedule.due()]


def test_each_step_runs_at_its_cadence_in_order():
    clock = Clock()
    steps = (Step("always", len, "", ""), Step("every 10 s", len, "", "", every=10.0),
             Step("every 3 s", len, "", "", every=3.0))
    schedule = Schedule(steps, clock)
    ran = []
    for _ in range(25):  # sweeps one second apart
        ran.append(names(schedule))
        clock.now += 1.0
    assert ran[0] == ["always", "every 10 s", "every 3 s"], "every step runs at the first sweep"
    assert all(sweep[0] == "always" for sweep in ran)
    assert [index for index, sweep in enumerate(ran) if "every 10 s" in sweep] == [0, 10, 20]
    assert [index for index, sweep in enumerate(ran) if "every 3 s" in sweep] == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    assert all(sweep == sorted(sweep, key=[step.name for step in steps].index) for sweep in ran)


def test_a_late_sweep_runs_a_step_once_not_to_catch_up():
    clock = Clock()
    schedule = Schedule((Step("every 10 s", len, "", "", every=10.0),), clock)
    assert names(schedule) == ["every 10 s"]
    clock.now += 45.0
    assert names(schedule) == ["every 10 s"]
    assert names(schedule) == []
    clock.now += 9.9
    assert names(schedule) == []


def test_the_steps_are_named_once_and_said_what_they_do():
    assert len({step.name for step in STEPS}) == len(STEPS)
    assert all(step.run.__doc__ and step.done and step.page and step.every >= 0 for step in STEPS)
    order = [step.name for step in STEPS]
    assert order.index("missed events") < order.index("expired rows"), "expiry reads the pass the listing completed"
