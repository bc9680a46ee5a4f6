"""Transaction without a database: the retry loop, backoff, argument checks, the three forms.

A fake session factory records what the Transaction does to each session (open, commit,
rollback, close); ``sleep`` is injected so nothing here waits.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

import mapper.transaction as transaction_module
from mapper import Transaction, errors
from mapper.transaction import is_retryable


class FakeSession:
    def __init__(self, factory: Factory, number: int, commit_error: BaseException | None) -> None:
        self.factory = factory
        self.number = number
        self.closed = False
        self.commit_error = commit_error

    def _log(self, what: str) -> None:
        self.factory.log.append((what, self.number))

    def commit(self) -> None:
        self._log("commit")
        if self.commit_error is not None:
            raise self.commit_error

    def rollback(self) -> None:
        self._log("rollback")
        if self.factory.rollback_error is not None:
            raise self.factory.rollback_error

    def close(self) -> None:
        self._log("close")
        self.closed = True


class Factory:
    """``open_session`` for a Transaction: numbered fake sessions, and a log of calls."""

    def __init__(
        self, commit_errors: list[BaseException | None] | None = None, rollback_error: BaseException | None = None
    ) -> None:
        self.log: list[tuple[str, int]] = []
        self.sessions: list[FakeSession] = []
        self.commit_errors = list(commit_errors or [])
        self.rollback_error = rollback_error

    def __call__(self) -> FakeSession:
        error = self.commit_errors.pop(0) if self.commit_errors else None
        s = FakeSession(self, len(self.sessions) + 1, error)
        self.sessions.append(s)
        self.log.append(("open", s.number))
        return s


def retryable(msg: str = "deadlock detected") -> errors.OperationalError:
    return errors.OperationalError(msg, code="40P01", retryable=True)


def make(factory: Factory, sleeps: list[float] | None = None, **options: Any) -> Transaction:
    opts: dict[str, Any] = {"retries": 0, "backoff": 0.05, "max_backoff": 2.0, "retry_on": ()}
    opts.update(options)
    record = sleeps.append if sleeps is not None else _never_sleep
    return Transaction(factory, sleep=record, **opts)  # type: ignore[arg-type]


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s where no retry should happen")


class FixedJitter:
    """Stands in for the random module: uniform() returns one end of its range, or a factor."""

    def __init__(self, factor: float | str) -> None:
        self.factor = factor
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        if self.factor == "low":
            return a
        if self.factor == "high":
            return b
        return float(self.factor)


def cycle(n: int) -> list[tuple[str, int]]:
    """The log of a failed attempt whose session was numbered n."""
    return [("open", n), ("rollback", n), ("close", n)]


# -- the decorator: commit, retry, give up ------------------------------------------------------


def test_first_attempt_commits_and_returns_the_result():
    f = Factory()
    tx = make(f, retries=3)
    got: list[Any] = []

    @tx
    def work(session, a, b=0):
        got.append(session)
        return a + b

    assert work(2, b=3) == 5
    assert got == [f.sessions[0]]
    assert f.log == [("open", 1), ("commit", 1), ("close", 1)]
    assert tx.attempts == 1


def test_decorator_keeps_the_function_name_and_doc():
    tx = make(Factory())

    @tx
    def transfer(session):
        """Move money."""

    assert transfer.__name__ == "transfer" and transfer.__doc__ == "Move money."
    assert transfer.__wrapped__ is not None  # type: ignore[attr-defined]


def test_retryable_error_in_the_work_is_retried_in_a_new_session():
    f = Factory()
    sleeps: list[float] = []
    tx = make(f, sleeps, retries=3, backoff=0.0)
    seen: list[FakeSession] = []

    @tx
    def work(session):
        seen.append(session)
        if len(seen) < 3:
            raise retryable()
        return "ok"

    assert work() == "ok"
    assert seen == f.sessions and len({id(s) for s in seen}) == 3
    assert f.log == cycle(1) + cycle(2) + [("open", 3), ("commit", 3), ("close", 3)]
    assert tx.attempts == 3
    assert sleeps == [0.0, 0.0]  # one wait between attempts, none after the success


def test_retryable_error_at_commit_is_rolled_back_and_retried():
    f = Factory(commit_errors=[retryable(), None])
    tx = make(f, [], retries=1)
    calls = []

    @tx
    def work(session):
        calls.append(session)
        return len(calls)

    assert work() == 2  # the result of the attempt that committed
    assert f.log == [("open", 1), ("commit", 1), ("rollback", 1), ("close", 1)] + [
        ("open", 2), ("commit", 2), ("close", 2)
    ]
    assert tx.attempts == 2


@pytest.mark.parametrize(
    "error",
    [
        errors.IntegrityError("duplicate key", code="23505"),
        errors.OperationalError("lock timeout", code="55P03", retryable=False),
        errors.StaleDataError("UPDATE matched 0 of 1 rows"),
        errors.PoolTimeoutError("no connection"),
        ValueError("from the application"),
        KeyboardInterrupt(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_rolled_back_and_raised_at_once(error):
    f = Factory()
    tx = make(f, retries=5)  # sleeping would fail the test

    @tx
    def work(session):
        raise error

    with pytest.raises(type(error)) as info:
        work()
    assert info.value is error
    assert f.log == cycle(1)
    assert tx.attempts == 1


def test_non_retryable_error_at_commit_is_raised_at_once():
    error = errors.IntegrityError("duplicate key")
    f = Factory(commit_errors=[error])
    tx = make(f, retries=5)
    with pytest.raises(errors.IntegrityError) as info:
        tx(lambda session: None)()
    assert info.value is error
    assert f.log == [("open", 1), ("commit", 1), ("rollback", 1), ("close", 1)]


def test_when_retries_run_out_the_last_error_is_raised():
    f = Factory()
    sleeps: list[float] = []
    tx = make(f, sleeps, retries=2)
    raised: list[BaseException] = []

    @tx
    def work(session):
        raised.append(retryable(f"attempt {len(raised) + 1}"))
        raise raised[-1]

    with pytest.raises(errors.OperationalError) as info:
        work()
    assert info.value is raised[-1] and str(info.value) == "attempt 3"
    assert tx.attempts == 3 and len(raised) == 3
    assert f.log == cycle(1) + cycle(2) + cycle(3)
    assert len(sleeps) == 2


def test_retries_zero_runs_once():
    f = Factory()
    tx = make(f, retries=0)
    error = retryable()
    with pytest.raises(errors.OperationalError) as info:
        tx(lambda session: (_ for _ in ()).throw(error))()
    assert info.value is error and tx.attempts == 1 and f.log == cycle(1)


def test_attempts_counts_each_call_afresh():
    f = Factory()
    tx = make(f, [], retries=3, backoff=0)
    fail = [2]

    @tx
    def work(session):
        if fail[0]:
            fail[0] -= 1
            raise retryable()

    work()
    assert tx.attempts == 3
    work()
    assert tx.attempts == 1


def test_retry_on_adds_exception_classes_and_their_subclasses():
    f = Factory()
    tx = make(f, [], retries=2, retry_on=(errors.FlushError,))
    errs = [errors.StaleDataError("stale"), errors.FlushError("flush")]

    @tx
    def work(session):
        if errs:
            raise errs.pop(0)
        return "ok"

    assert work() == "ok" and tx.attempts == 3


def test_retry_on_a_database_error_class_retries_it():
    """retry_on is documented as "more exception classes to retry"; IntegrityError is one."""
    f = Factory()
    tx = make(f, [], retries=1, retry_on=(errors.IntegrityError,))
    errs = [errors.IntegrityError("duplicate key", code="23505")]

    @tx
    def work(session):
        if errs:
            raise errs.pop(0)
        return "ok"

    assert work() == "ok"
    assert tx.attempts == 2


def test_is_retryable():
    assert is_retryable(errors.OperationalError("x", retryable=True))
    assert is_retryable(errors.DatabaseError("x", code="40001", retryable=True))
    assert not is_retryable(errors.OperationalError("x", code="40001"))  # the flag decides, not the code
    assert not is_retryable(errors.StaleDataError("x"))
    assert is_retryable(errors.StaleDataError("x"), (errors.StaleDataError,))
    assert is_retryable(errors.StaleDataError("x"), (errors.FlushError,))
    assert not is_retryable(ValueError("x"), (errors.StaleDataError,))
    assert not is_retryable(ValueError("x"))


def test_a_failing_rollback_does_not_hide_the_error():
    error = errors.IntegrityError("duplicate key")
    f = Factory(rollback_error=errors.InterfaceError("connection lost"))
    tx = make(f, retries=2)
    with pytest.raises(errors.IntegrityError) as info:
        tx(lambda session: (_ for _ in ()).throw(error))()
    assert info.value is error
    assert f.log == cycle(1)


def test_a_failing_rollback_after_a_retryable_error_still_retries():
    f = Factory(rollback_error=errors.InterfaceError("connection lost"))
    tx = make(f, [], retries=1)
    errs = [retryable()]

    @tx
    def work(session):
        if errs:
            raise errs.pop(0)
        return "ok"

    assert work() == "ok"
    assert f.log == cycle(1) + [("open", 2), ("commit", 2), ("close", 2)]


def test_a_session_closed_by_the_work_is_not_rolled_back():
    f = Factory()
    tx = make(f, retries=0)

    @tx
    def work(session):
        session.close()
        raise ValueError("after close")

    with pytest.raises(ValueError):
        work()
    assert ("rollback", 1) not in f.log
    assert f.log[-1] == ("close", 1)


# -- backoff ---------------------------------------------------------------------------------------


def test_backoff_doubles_and_is_capped(monkeypatch):
    monkeypatch.setattr(transaction_module, "random", FixedJitter(1.0))
    tx = make(Factory(), backoff=0.1, max_backoff=0.5)
    assert [tx.delay(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])
    zero = make(Factory(), backoff=0, max_backoff=2.0)
    assert [zero.delay(n) for n in range(1, 5)] == [0.0, 0.0, 0.0, 0.0]
    low_cap = make(Factory(), backoff=1.0, max_backoff=0.25)
    assert low_cap.delay(1) == 0.25


def test_jitter_spans_half_to_all_of_the_base(monkeypatch):
    jitter = FixedJitter("low")
    monkeypatch.setattr(transaction_module, "random", jitter)
    tx = make(Factory(), backoff=0.1, max_backoff=10.0)
    assert tx.delay(3) == pytest.approx(0.2)
    jitter.factor = "high"
    assert tx.delay(3) == pytest.approx(0.4)
    assert jitter.calls == [(0.5, 1.0), (0.5, 1.0)]


def test_real_jitter_stays_in_bounds_and_varies():
    tx = make(Factory(), backoff=0.01, max_backoff=10.0)
    rng_state = random.getstate()
    try:
        random.seed(1234)
        samples = [tx.delay(4) for _ in range(2000)]  # base 0.08
    finally:
        random.setstate(rng_state)
    assert all(0.04 <= d <= 0.08 for d in samples)
    assert min(samples) < 0.042 and max(samples) > 0.078  # the whole range is used
    assert len(set(samples)) > 1900  # two waiters rarely wake together


def test_no_wait_is_longer_than_max_backoff(monkeypatch):
    """max_backoff is "the longest wait between attempts", jitter included."""
    jitter = FixedJitter("high")
    monkeypatch.setattr(transaction_module, "random", jitter)
    tx = make(Factory(), backoff=0.05, max_backoff=2.0)
    assert [tx.delay(n) for n in range(1, 8)] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0])
    jitter.factor = "low"
    assert [tx.delay(n) for n in range(1, 8)] == pytest.approx([0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0])


def test_waits_at_the_cap_are_still_jittered():
    tx = make(Factory(), backoff=0.05, max_backoff=2.0)
    waits = [tx.delay(n) for n in range(8, 12) for _ in range(50)]
    assert all(w <= 2.0 for w in waits)
    assert len(set(waits)) > 1


def test_backoff_after_very_many_failures_stays_capped():
    tx = make(Factory(), retries=5000, backoff=0.05, max_backoff=2.0)
    assert 0 < tx.delay(1100) <= 2.0  # 2.0 ** 1099 would overflow a float
    assert make(Factory(), backoff=0, max_backoff=2.0).delay(5000) == 0.0


def test_sleeps_between_attempts_use_the_growing_delay(monkeypatch):
    monkeypatch.setattr(transaction_module, "random", FixedJitter(1.0))
    f = Factory()
    sleeps: list[float] = []
    tx = make(f, sleeps, retries=4, backoff=0.1, max_backoff=0.3)

    @tx
    def work(session):
        raise retryable()

    with pytest.raises(errors.OperationalError):
        work()
    assert sleeps == pytest.approx([0.1, 0.2, 0.3, 0.3])
    assert tx.attempts == 5


# -- argument checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": "3"}, "retries"),
        ({"retries": 2.0}, "retries"),
        ({"retries": True}, "retries"),
        ({"retries": None}, "retries"),
        ({"backoff": -0.01}, "backoff"),
        ({"backoff": "0.1"}, "backoff"),
        ({"backoff": True}, "backoff"),
        ({"backoff": None}, "backoff"),
        ({"max_backoff": -1}, "max_backoff"),
        ({"max_backoff": "2"}, "max_backoff"),
        ({"retry_on": (1,)}, "retry_on"),
        ({"retry_on": ("StaleDataError",)}, "retry_on"),
        ({"retry_on": (int,)}, "retry_on"),
        ({"retry_on": (errors.StaleDataError, object)}, "retry_on"),
    ],
)
def test_bad_arguments_are_configuration_errors_naming_the_argument(options, name):
    with pytest.raises(errors.ConfigurationError, match=rf"transaction\({name}="):
        make(Factory(), **options)


def test_good_arguments_are_kept():
    tx = make(Factory(), retries=0, backoff=0, max_backoff=0, retry_on=(errors.StaleDataError, KeyError))
    assert (tx.retries, tx.backoff, tx.max_backoff) == (0, 0.0, 0.0)
    assert tx.retry_on == (errors.StaleDataError, KeyError)
    assert tx.attempts == 0


# -- the with form ---------------------------------------------------------------------------------


def test_with_form_commits_on_a_clean_exit():
    f = Factory()
    tx = make(f)
    with tx as s:
        assert s is f.sessions[0]
        assert f.log == [("open", 1)]
    assert f.log == [("open", 1), ("commit", 1), ("close", 1)]
    assert tx.attempts == 1


def test_with_form_rolls_back_and_raises_even_a_retryable_error():
    f = Factory()
    tx = make(f)
    error = retryable()
    with pytest.raises(errors.OperationalError) as info:
        with tx:
            raise error
    assert info.value is error
    assert f.log == cycle(1)


def test_with_form_raises_a_commit_error():
    error = retryable()
    f = Factory(commit_errors=[error])
    with pytest.raises(errors.OperationalError) as info:
        with make(f):
            pass
    assert info.value is error
    assert f.log == [("open", 1), ("commit", 1), ("rollback", 1), ("close", 1)]


def test_with_form_refuses_retries_before_opening_a_session():
    f = Factory()
    tx = make(f, retries=1)
    with pytest.raises(errors.SessionError, match=r"retries=1"):
        with tx:
            raise AssertionError("the block must not run")
    assert f.log == []


def test_with_form_cannot_be_nested_but_can_be_reused():
    f = Factory()
    tx = make(f)
    with tx:
        with pytest.raises(errors.SessionError, match="already in use"):
            with tx:
                pass
    with tx:
        pass
    assert f.log == [("open", 1), ("commit", 1), ("close", 1), ("open", 2), ("commit", 2), ("close", 2)]


# -- the loop form -------------------------------------------------------------------------------


def test_loop_form_numbers_attempts_and_stops_after_the_commit():
    f = Factory()
    tx = make(f, [], retries=4, backoff=0)
    seen = []
    for attempt in tx:
        seen.append((attempt.number, attempt.last))
        with attempt as s:
            assert attempt.session is s
            if attempt.number < 3:
                raise retryable()
        assert attempt.succeeded == (attempt.number == 3)
    assert seen == [(1, False), (2, False), (3, False)]
    assert tx.attempts == 3
    assert f.log == cycle(1) + cycle(2) + [("open", 3), ("commit", 3), ("close", 3)]


def test_loop_form_last_attempt_is_marked_and_raises():
    f = Factory()
    tx = make(f, [], retries=1, backoff=0)
    seen = []
    error = retryable()
    with pytest.raises(errors.OperationalError) as info:
        for attempt in tx:
            seen.append((attempt.number, attempt.last))
            with attempt:
                raise error
    assert info.value is error
    assert seen == [(1, False), (2, True)]


def test_loop_form_keeps_the_swallowed_error_on_the_attempt():
    f = Factory()
    tx = make(f, [], retries=1, backoff=0)
    error = retryable()
    attempts = []
    for attempt in tx:
        attempts.append(attempt)
        with attempt:
            if attempt.number == 1:
                raise error
    assert attempts[0].error is error and not attempts[0].succeeded
    assert attempts[1].error is None and attempts[1].succeeded


def test_loop_form_return_inside_the_block_commits():
    f = Factory()
    tx = make(f, retries=3)

    def run():
        for attempt in tx:
            with attempt:
                return "early"
        return "fell through"

    assert run() == "early"
    assert f.log == [("open", 1), ("commit", 1), ("close", 1)]


def test_loop_form_break_inside_the_block_commits_and_ends_the_loop():
    f = Factory()
    tx = make(f, retries=3)
    n = 0
    for attempt in tx:
        n += 1
        with attempt:
            break
    assert n == 1
    assert f.log == [("open", 1), ("commit", 1), ("close", 1)]


def test_loop_form_attempt_used_without_with_is_an_error():
    f = Factory()
    tx = make(f, retries=2)
    with pytest.raises(errors.SessionError, match="with attempt as session"):
        for _attempt in tx:
            pass
    assert f.log == []


def test_loop_form_left_before_the_first_attempt_opens_nothing():
    f = Factory()
    for _attempt in make(f, retries=2):
        break
    assert f.log == []


def test_loop_form_non_retryable_error_ends_the_loop():
    f = Factory()
    tx = make(f, retries=3)
    n = 0
    with pytest.raises(ValueError):
        for attempt in tx:
            n += 1
            with attempt:
                raise ValueError("bad input")
    assert n == 1 and f.log == cycle(1)


def test_many_failures_then_success_with_zero_backoff():
    """A large retry budget works to the end (backoff 0: no waiting at all)."""
    f = Factory()
    sleeps: list[float] = []
    tx = make(f, sleeps, retries=1500, backoff=0, max_backoff=0)
    left = [1200]

    @tx
    def work(session):
        if left[0]:
            left[0] -= 1
            raise retryable()
        return "done"

    assert work() == "done"
    assert tx.attempts == 1201
    assert set(sleeps) == {0.0}
