"""Loading relations for 100,000 parents: one query per chunk of keys, sized to the backend's limit."""

from __future__ import annotations

import math

from domain.mappers import OwnerMapper, PugMapper
from domain.model import Owner, Pug

N = 100_000


def _expected_chunks(db, keys: int) -> int:
    d = db.engine.dialect
    return 1 if d.array_in else math.ceil(keys / d.max_params)


def test_relations_of_100000_parents_load_one_query_per_chunk(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        owners = [Owner(f"o{i}") for i in range(N)]
        s.add_all(owners)
        s.flush()
        # Every other owner gets one pug; the rest must come back with empty collections.
        s.add_all([Pug(f"p{i}", i % 7, owners[i]) for i in range(0, N, 2)])
    dialect = db.engine.dialect
    live_limit = dialect.max_params
    for limit in (live_limit, 30_000):
        # The live limit read from the connection, then a smaller one as an older SQLite
        # or a small packet would impose.
        dialect.max_params = limit
        expected = _expected_chunks(db, N)
        if backend.name == "postgresql":
            assert expected == 1  # one array parameter, whatever the number of keys
        else:
            assert expected == math.ceil(N / limit)
        with db.session() as s:
            owners = s.query(Owner).order_by("id").all()
            assert len(owners) == N
            with count(s, expected):
                s.load(owners, "pugs")
            with count(s, 0):
                assert [len(o.pugs) for o in owners[:4]] == [1, 0, 1, 0]
                assert sum(len(o.pugs) for o in owners) == N // 2
                assert all(o.pugs[0].owner is o and o.pugs[0].name == f"p{i}" for i, o in enumerate(owners) if i % 2 == 0)
                assert all(o.pugs == [] for o in owners[1::2])
    dialect.max_params = 20_000
    with db.session() as s:
        pugs = s.query(Pug).order_by("id").all()
        assert len(pugs) == N // 2
        with count(s, _expected_chunks(db, N // 2)):
            s.load(pugs, "owner")
        with count(s, 0):
            assert [p.owner.name for p in pugs[:3]] == ["o0", "o2", "o4"]
            assert all(p.owner.name == f"o{2 * i}" for i, p in enumerate(pugs))
    dialect.max_params = live_limit
