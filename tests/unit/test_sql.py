"""SQL text without a database: ``bind_named`` and the expression compiler (SQLite dialect).

Values never appear in the SQL text; they travel only as parameters.
"""

from __future__ import annotations

import datetime

import pytest

from mapper import Column, Mapper, errors
from mapper import types as t
from mapper.dialects.sqlite import SQLiteDialect
from mapper.expressions import Literal
from mapper.sql import Compiler, Select, bind_named
from tests.models import OwnerMapper, PugMapper

EVIL = "x'); DROP TABLE owners; --"


class Ev:
    day: datetime.date
    id: int


class EvMapper(Mapper[Ev]):
    table = "sql_events"
    id = Column(t.Integer, primary_key=True)
    day = Column(t.Date)


# -- bind_named ----------------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["?", "%s"])
def test_named_parameters_become_markers_in_order(marker):
    sql, params = bind_named("SELECT * FROM t WHERE a = :a AND b > :b_2 OR a = :a", {"a": 1, "b_2": "x"}, marker)
    assert sql == f"SELECT * FROM t WHERE a = {marker} AND b > {marker} OR a = {marker}"
    assert params == [1, "x", 1]


def test_unused_parameters_are_ignored_and_no_parameters_is_fine():
    assert bind_named("SELECT :x", {"x": 1, "y": 2}, "?") == ("SELECT ?", [1])
    assert bind_named("SELECT 1", None, "?") == ("SELECT 1", [])
    assert bind_named("SELECT 1", {}, "%s") == ("SELECT 1", [])


def test_placeholder_at_the_very_end_and_adjacent_punctuation():
    assert bind_named("f(:a,:b)", {"a": 1, "b": 2}, "?") == ("f(?,?)", [1, 2])
    assert bind_named("x=:v", {"v": None}, "?") == ("x=?", [None])


@pytest.mark.parametrize("marker", ["?", "%s"])
def test_quoted_strings_and_identifiers_are_untouched(marker):
    sql, params = bind_named(
        """SELECT ':no', "col:x", `b:y`, 'it''s :no' FROM t WHERE c = :yes""", {"yes": 5}, marker
    )
    assert sql == f"""SELECT ':no', "col:x", `b:y`, 'it''s :no' FROM t WHERE c = {marker}"""
    assert params == [5]


def test_double_quoted_identifier_with_doubled_quote():
    sql, params = bind_named('SELECT "a"":b" FROM t WHERE x = :x', {"x": 1}, "?")
    assert sql == 'SELECT "a"":b" FROM t WHERE x = ?'
    assert params == [1]


@pytest.mark.parametrize("marker", ["?", "%s"])
def test_casts_are_kept(marker):
    sql, params = bind_named("SELECT :v::int, created::date FROM t", {"v": "3"}, marker)
    assert sql == f"SELECT {marker}::int, created::date FROM t"
    assert params == ["3"]


def test_colon_not_followed_by_a_name_is_kept():
    sql, params = bind_named("SELECT 1 : 2, ':' , x:1", {}, "?")
    assert sql == "SELECT 1 : 2, ':' , x:1"
    assert params == []


def test_percent_is_doubled_for_percent_s_marker():
    sql, params = bind_named("SELECT 5 % 2, '50%' FROM t WHERE n LIKE :p", {"p": "a%"}, "%s")
    assert sql == "SELECT 5 %% 2, '50%%' FROM t WHERE n LIKE %s"
    assert params == ["a%"]  # the value itself is not touched


def test_percent_is_kept_for_question_marker():
    sql, params = bind_named("SELECT 5 % 2, '50%' FROM t WHERE n LIKE :p", {"p": "a%"}, "?")
    assert sql == "SELECT 5 % 2, '50%' FROM t WHERE n LIKE ?"
    assert params == ["a%"]


def test_values_are_never_spliced_into_the_text():
    sql, params = bind_named("INSERT INTO owners (name) VALUES (:name)", {"name": EVIL}, "?")
    assert sql == "INSERT INTO owners (name) VALUES (?)"
    assert params == [EVIL]


def test_missing_name_is_query_error():
    with pytest.raises(errors.QueryError) as info:
        bind_named("SELECT * FROM t WHERE a = :a AND b = :missing", {"a": 1}, "?")
    assert ":missing" in str(info.value)


@pytest.mark.parametrize("params", [[1], (1,), "a", 3])
def test_parameters_must_be_a_mapping(params):
    with pytest.raises(errors.QueryError):
        bind_named("SELECT :a", params, "?")


# -- the compiler --------------------------------------------------------------------------------


@pytest.fixture
def c() -> Compiler:
    return Compiler(SQLiteDialect())


def cond(c: Compiler, expr) -> tuple[str, list]:
    params: list = []
    return c.condition(expr, params), params


AGE = '"pugs"."age"'
NAME = '"pugs"."name"'


@pytest.mark.parametrize(
    "build, sql, params",
    [
        (lambda: PugMapper.age == 3, f"{AGE} = ?", [3]),
        (lambda: PugMapper.age != 3, f"{AGE} <> ?", [3]),
        (lambda: PugMapper.age < 3, f"{AGE} < ?", [3]),
        (lambda: PugMapper.age <= 3, f"{AGE} <= ?", [3]),
        (lambda: PugMapper.age > 3, f"{AGE} > ?", [3]),
        (lambda: PugMapper.age >= 3, f"{AGE} >= ?", [3]),
        (lambda: 3 < PugMapper.age, f"{AGE} > ?", [3]),
        (lambda: PugMapper.age == None, f"{AGE} IS NULL", []),  # noqa: E711
        (lambda: PugMapper.age != None, f"{AGE} IS NOT NULL", []),  # noqa: E711
        (lambda: PugMapper.age.is_(None), f"{AGE} IS NULL", []),
        (lambda: PugMapper.age.is_not(None), f"{AGE} IS NOT NULL", []),
        (lambda: PugMapper.age.in_([1, 2, 3]), f"{AGE} IN (?, ?, ?)", [1, 2, 3]),
        (lambda: PugMapper.age.not_in((1, 2)), f"{AGE} NOT IN (?, ?)", [1, 2]),
        (lambda: PugMapper.age.in_([]), "1 = 0", []),
        (lambda: PugMapper.age.not_in([]), "1 = 1", []),
        (lambda: PugMapper.name.like("C%"), f"{NAME} LIKE ?", ["C%"]),
        (lambda: PugMapper.name.ilike("c%"), f"lower({NAME}) LIKE lower(?)", ["c%"]),
        (lambda: PugMapper.age.between(1, 5), f"{AGE} BETWEEN ? AND ?", [1, 5]),
        (lambda: PugMapper.age == PugMapper.id, f'{AGE} = "pugs"."id"', []),
        (lambda: (PugMapper.age > 1) & (PugMapper.name == "A"), f"({AGE} > ? AND {NAME} = ?)", [1, "A"]),
        (lambda: (PugMapper.age > 1) | (PugMapper.name == "A"), f"({AGE} > ? OR {NAME} = ?)", [1, "A"]),
        (lambda: ~(PugMapper.age > 1), f"NOT ({AGE} > ?)", [1]),
        (
            lambda: ~((PugMapper.age < 1) | (PugMapper.age > 9)) & PugMapper.name.in_(["a", "b"]),
            f"(NOT (({AGE} < ? OR {AGE} > ?)) AND {NAME} IN (?, ?))",
            [1, 9, "a", "b"],
        ),
    ],
)
def test_condition_rendering(c, build, sql, params):
    assert cond(c, build()) == (sql, params)


@pytest.mark.parametrize(
    "build",
    [
        lambda v: PugMapper.name == v,
        lambda v: PugMapper.name != v,
        lambda v: PugMapper.name < v,
        lambda v: PugMapper.name.in_([v, v]),
        lambda v: PugMapper.name.not_in([v]),
        lambda v: PugMapper.name.like(v),
        lambda v: PugMapper.name.ilike(v),
        lambda v: PugMapper.name.between(v, v),
        lambda v: (PugMapper.name == v) | ~(PugMapper.name == v),
    ],
)
def test_values_only_travel_as_parameters(c, build):
    sql, params = cond(c, build(EVIL))
    assert "DROP" not in sql and "'" not in sql
    assert params and all(p == EVIL for p in params)


def test_literals_are_converted_by_their_column_type(c):
    sql, params = cond(c, OwnerMapper.id == 5)
    assert params == [5]
    sql, params = cond(c, EvMapper.day.between(datetime.date(2024, 1, 2), datetime.date(2024, 2, 1)))
    assert sql == '"sql_events"."day" BETWEEN ? AND ?'
    assert params == ["2024-01-02", "2024-02-01"]
    assert c.bind(Literal(datetime.date(2024, 3, 4), t.Date())) == "2024-03-04"
    assert c.bind(Literal(None, t.Date())) is None


def test_select_rendering(c):
    s = Select(
        "pugs",
        [PugMapper.id, PugMapper.name],
        PugMapper.name == EVIL,
        [PugMapper.age.desc(), PugMapper.name.asc()],
        limit=5,
        offset=10,
    )
    sql, params = c.select(s)
    assert sql == (
        'SELECT "pugs"."id", "pugs"."name" FROM "pugs" WHERE "pugs"."name" = ? '
        'ORDER BY "pugs"."age" DESC, "pugs"."name" LIMIT 5 OFFSET 10'
    )
    assert params == [EVIL]


def test_select_offset_without_limit(c):
    sql, params = c.select(Select("pugs", [PugMapper.id], None, [], None, 3))
    assert sql == 'SELECT "pugs"."id" FROM "pugs" LIMIT -1 OFFSET 3'
    assert params == []


def test_count_and_exists_rendering(c):
    sql, params = c.count(Select("pugs", [PugMapper.id], PugMapper.age > 2))
    assert sql == 'SELECT count(*) FROM "pugs" WHERE "pugs"."age" > ?'
    assert params == [2]
    sql, params = c.count(Select("pugs", [PugMapper.id], PugMapper.age > 2, [PugMapper.id.asc()], 4, 1))
    assert sql == (
        'SELECT count(*) FROM (SELECT "pugs"."id" FROM "pugs" WHERE "pugs"."age" > ? '
        'ORDER BY "pugs"."id" LIMIT 4 OFFSET 1) AS sub'
    )
    assert params == [2]
    sql, params = c.exists(Select("pugs", [PugMapper.id], PugMapper.name == EVIL))
    assert sql == 'SELECT 1 FROM "pugs" WHERE "pugs"."name" = ? LIMIT 1'
    assert params == [EVIL]


def test_set_based_update_and_delete_rendering(c):
    sql, params = c.update_where("pugs", [(PugMapper.name, EVIL), (PugMapper.age, 4)], PugMapper.age == 3)
    assert sql == 'UPDATE "pugs" SET "name" = ?, "age" = ? WHERE "pugs"."age" = ?'
    assert params == [EVIL, 4, 3]
    sql, params = c.update_where("pugs", [(PugMapper.age, None)], None, [PugMapper.id])
    assert sql == 'UPDATE "pugs" SET "age" = ? RETURNING "pugs"."id"'
    assert params == [None]
    sql, params = c.delete_where("pugs", PugMapper.name.in_([EVIL]), [PugMapper.id])
    assert sql == 'DELETE FROM "pugs" WHERE "pugs"."name" IN (?) RETURNING "pugs"."id"'
    assert params == [EVIL]


def test_identifiers_are_quoted(c):
    assert c.quote("select") == '"select"'
    assert c.quote('we"ird') == '"we""ird"'


def test_subqueries_render_under_their_own_alias_and_outer_columns_outside(c):
    from mapper.functions import ExistsSubquery, InSubquery, Subquery, func, outer

    inner = Select("pugs", [PugMapper.id], PugMapper.owner_id == outer(PugMapper.owner_id))
    sql, params = c.select(Select("pugs", [PugMapper.id], ExistsSubquery(Subquery(inner, (), "Pug query"))))
    assert sql == (
        'SELECT "pugs"."id" FROM "pugs" WHERE EXISTS (SELECT "sq1"."id" FROM "pugs" "sq1" '
        'WHERE "sq1"."owner_id" = "pugs"."owner_id")'
    )
    owners = Select("owners", [OwnerMapper.id], OwnerMapper.name == EVIL)
    sql, params = c.select(Select("pugs", [func.count()], InSubquery(PugMapper.owner_id, Subquery(owners, (), "Owner query"), True)))
    assert sql == (
        'SELECT count(*) FROM "pugs" WHERE "pugs"."owner_id" NOT IN '
        '(SELECT "sq1"."id" FROM "owners" "sq1" WHERE "sq1"."name" = ?)'
    )
    assert params == [EVIL]


def test_group_by_having_distinct_and_labels_render_in_order(c):
    from mapper.functions import func

    s = Select("pugs", [PugMapper.age, func.count()], PugMapper.age > 1, [PugMapper.age.desc()], 5, None,
               group_by=[PugMapper.age], having=func.count() > 2, distinct=True, labels=[None, "n"])
    sql, params = c.select(s)
    assert sql == (
        'SELECT DISTINCT "pugs"."age", count(*) AS "n" FROM "pugs" WHERE "pugs"."age" > ? '
        'GROUP BY "pugs"."age" HAVING count(*) > ? ORDER BY "pugs"."age" DESC LIMIT 5'
    )
    assert params == [1, 2]
