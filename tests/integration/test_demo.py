"""The demo (``python -m domain``) runs to the end on every backend, its value-object step included."""

from __future__ import annotations

from domain.__main__ import main


def test_the_demo_runs_and_shows_the_value_object_step(backend, capsys):
    argv = [] if backend.name == "sqlite" else ["--db", backend.url, "--reset"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Give an order a shipping address (a value object stored in three columns) (4 statements)" in out
    assert "order #2 ships to 1 Pug Lane, Leeds" in out
    assert "an equal address written again: 0 statements" in out
    assert "orders shipping to Leeds: ['#2 bob']" in out
    assert "orders without an address (all three columns NULL): 1" in out
    assert out.rstrip().endswith("done.")
