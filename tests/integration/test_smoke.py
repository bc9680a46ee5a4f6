"""The quickstart flow on every backend: insert, read back with plain SQL, query."""

from __future__ import annotations

from tests.models import Owner, OwnerMapper, Pug, PugMapper


def test_insert_and_read_back(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.add_all([Pug("Cody"), Pug("Doug", age=3)])
        with count(s, 2):  # one batched INSERT per table
            s.flush()
        assert tom.id is not None
        assert s.get(Owner, tom.id) is tom
    rows = backend.raw(f"SELECT name, age FROM {backend.q('pugs')} ORDER BY name")
    assert rows == [("Cody", 0), ("Doug", 3)]
    with db.session() as s:
        young = s.query(Pug).where(PugMapper.age < 3, PugMapper.name.like("C%")).all()
        assert [p.name for p in young] == ["Cody"]
