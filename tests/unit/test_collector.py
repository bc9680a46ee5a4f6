"""The cyclic-GC pause is counted: threads that load at once leave the collector as they found it."""

from __future__ import annotations

import gc
import random
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from mapper import loading
from mapper.loading import PAUSE_ROWS, collector_paused, pause_gc, resume_gc

ON = SimpleNamespace(pause_gc=True)
OFF = SimpleNamespace(pause_gc=False)
BIG = PAUSE_ROWS + 1


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    assert loading._holders == 0, "a pause was left held"
    gc.enable()


@pytest.mark.parametrize("order", ["A B A B", "A B B A"])
def test_two_threads_interleaved_keep_the_collector_off_until_the_last_resumes(order: str) -> None:
    # A and B each pause, then resume; every step runs in a thread of its own.
    steps = {name: iter([lambda: pause_gc(BIG, ON), resume_gc]) for name in "AB"}
    states = []
    for name in order.split():
        th = threading.Thread(target=next(steps[name]))
        th.start()
        th.join(5)
        states.append(gc.isenabled())
    # Off from the first pause until the last resume, on after it.
    assert states == [False, False, False, True]


def test_many_threads_pausing_at_random_end_with_the_collector_on() -> None:
    def work(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(300):
            if rnd.random() < 0.5:
                paused = pause_gc(BIG, ON)
                assert paused and not gc.isenabled()
                resume_gc()
            else:
                with collector_paused(ON):
                    assert not gc.isenabled()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert gc.isenabled()


def test_a_collector_the_application_turned_off_stays_off() -> None:
    gc.disable()
    try:
        assert pause_gc(BIG, ON)
        with collector_paused(ON):
            pass
        resume_gc()
        assert not gc.isenabled()
        # Turned off by the application while another thread's pause was already held:
        # that pause ends, the collector stays as the application wants it.
        gc.enable()
        assert pause_gc(BIG, ON)
        resume_gc()
        assert gc.isenabled()
    finally:
        gc.enable()


def test_small_batches_and_the_option_off_never_touch_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: calls.append("enable"))
    assert not pause_gc(PAUSE_ROWS, ON)
    assert not pause_gc(10**6, OFF)
    with collector_paused(OFF):
        pass
    assert calls == []
    with collector_paused(ON):
        pass
    assert calls == ["disable", "enable"]
