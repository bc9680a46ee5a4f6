"""What every backend has in common, and the knobs by which they differ.

Differences are data on the class (parameter marker, quoting, capability flags, DDL
type names); hook methods exist only where the shape of the SQL or the driver call
differs. A dialect never imports the mapping or the session.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from .. import errors
from .._typing import DBAPIConnection
from ..schema import Column, Table
from ..types import ColumnType, DateTime, Enum, Float, Numeric, String, Time
from . import values

__all__ = ["Dialect", "URL", "Processor", "parse_url", "json_dumps"]

Processor = Callable[[Any], Any]


def json_dumps(value: Any) -> str:
    """JSON text for a value; compact, unicode kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class URL:
    """A parsed database URL. ``repr`` and ``str`` never show the password."""

    def __init__(
        self,
        scheme: str,
        username: str | None,
        password: str | None,
        host: str | None,
        port: int | None,
        database: str,
        query: dict[str, str],
        raw: str,
    ) -> None:
        self.scheme = scheme
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.query = query
        self._raw = raw

    @property
    def raw(self) -> str:
        """The URL exactly as given (password included): only for the driver."""
        return self._raw

    @property
    def driver_url(self) -> str:
        """The URL as the driver reads it: as given, less a ``+driver`` suffix of the scheme."""
        scheme, sep, rest = self._raw.partition("://")
        return scheme.split("+", 1)[0] + sep + rest

    @property
    def secrets(self) -> list[str]:
        """Every secret the URL carries, decoded and as written, for masking.

        The password in the userinfo, and the value of every query key that names a password
        or passphrase (``password``, ``sslpassword``, ...): a driver may quote either form.
        """
        found = [self.password] + [v for k, v in self.query.items() if _secret_key(k)]
        out: list[str] = []
        for value in found:
            if value:
                for form in (value, quote(value, safe=""), quote_plus(value, safe="")):
                    if form not in out:
                        out.append(form)
        if self.password:
            written = _written_password(self._raw)
            if written and written not in out:
                out.append(written)
        # Longest first, so a secret that contains another is masked whole.
        return sorted(out, key=len, reverse=True)

    def safe(self) -> str:
        """The URL with any password masked, for messages and logs."""
        if not self.secrets:
            return self._raw
        userinfo = f"{self.username or ''}{':***' if self.password else ''}@" if self.username or self.password else ""
        host = self.host or ""
        port = f":{self.port}" if self.port else ""
        query = "&".join(f"{k}={'***' if _secret_key(k) else v}" for k, v in self.query.items())
        return f"{self.scheme}://{userinfo}{host}{port}/{self.database}" + (f"?{query}" if query else "")

    def mask(self, text: str) -> str:
        """``text`` with every password of the URL replaced by ***."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"URL({self.safe()!r})"

    __str__ = safe


def parse_url(url: str) -> URL:
    """Split a database URL into its parts.

    Raises:
        ConfigurationError: for a URL that is not ``scheme://...``.
    """
    if not isinstance(url, str) or "://" not in url:
        msg = (
            f"database URL {url!r} is not valid; use sqlite:///file.db, sqlite:///:memory:, "
            "postgresql://user@host:5432/db or mysql://user@host:3306/db"
        )
        raise errors.ConfigurationError(msg)
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme.startswith("sqlite"):
        # sqlite:///relative.db, sqlite:////absolute.db, sqlite:///:memory:
        path, _, query = rest.partition("?")
        if path.startswith("/"):
            path = path[1:]
        return URL(scheme, None, None, None, None, path, dict(parse_qsl(query)), url)
    parts = urlsplit(url)
    if "@" in parts.path:
        # "user:pa/ss@host" splits at the "/", so the password would read as host and port.
        msg = (
            f"database URL for {scheme} has an '@' after the host part; percent-encode special "
            "characters of the user name and password ('/' as %2F, '@' as %40)"
        )
        raise errors.ConfigurationError(msg)
    try:
        port = parts.port
    except ValueError:
        msg = f"database URL has an invalid port: {_mask(url)}"
        # No chained cause: urlsplit's message quotes the text it took for the port.
        raise errors.ConfigurationError(msg) from None
    return URL(
        scheme,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password is not None else None,
        parts.hostname,
        port,
        unquote(parts.path.lstrip("/")),
        dict(parse_qsl(parts.query)),
        url,
    )


def _secret_key(key: str) -> bool:
    """Whether a URL query key holds a secret (password, sslpassword, passphrase...)."""
    k = key.lower()
    return "password" in k or "passphrase" in k or k in ("passwd", "pwd", "secret")


def _written_password(url: str) -> str | None:
    """The password of a URL's userinfo exactly as written (still percent-encoded)."""
    rest = url.partition("://")[2]
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" not in netloc:
        return None
    userinfo = netloc.rpartition("@")[0]
    return userinfo.partition(":")[2] or None


def _mask(url: str) -> str:
    """A URL that did not parse, with its userinfo password and secret query values masked."""
    scheme, sep, rest = url.partition("://")
    rest, qmark, query = rest.partition("?")
    if "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        rest = f"{userinfo}@{host}"
    if query:
        pairs = [p.partition("=") for p in query.split("&")]
        query = "&".join(f"{k}{eq}{'***' if _secret_key(k) else v}" for k, eq, v in pairs)
    return f"{scheme}{sep}{rest}{qmark}{query}"


# -- value conversion shared by the dialects ----------------------------------------------------


def _to_utc_naive(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(_dt.timezone.utc).replace(tzinfo=None)


def _enum_bind(enum_class: type[enum.Enum]) -> Processor:
    def bind(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, enum_class):
            return value.name
        try:
            return enum_class[value].name
        except KeyError:
            msg = f"{value!r} is not a member of {enum_class.__name__}"
            raise errors.DataError(msg) from None

    return bind


def _enum_result(enum_class: type[enum.Enum]) -> Processor:
    def result(value: Any) -> Any:
        return None if value is None else enum_class[value]

    return result


class Dialect:
    """Base class of the backends.

    Class attributes are the differences as data; an instance is created per Database
    and refined by ``initialize()`` from the first live connection (server version,
    parameter limits).
    """

    name: ClassVar[str] = "base"
    #: The pip extra that installs the driver.
    install_extra: ClassVar[str] = ""
    #: The driver's placeholder for a positional parameter.
    marker: ClassVar[str] = "?"
    #: Character used to quote identifiers.
    quote_char: ClassVar[str] = '"'
    #: INSERT ... RETURNING, UPDATE ... RETURNING, DELETE ... RETURNING.
    insert_returning: bool = True
    update_returning: bool = True
    delete_returning: bool = True
    #: Bind an IN list as one array parameter (``= ANY(%s)``).
    array_in: ClassVar[bool] = False
    #: Rows per array-bound INSERT/UPDATE (see ``insert_arrays_sql``); 0: no array statements.
    array_dml_rows: ClassVar[int] = 0
    #: Most bound parameters in one statement (refined from the live connection).
    max_params: int = 999
    #: Most rows in one row-value IN list, ``(a, b) IN ((?, ?), ...)``, whatever the parameter limit.
    max_row_values: ClassVar[int] = 1_000_000
    #: Rows per UPDATE that binds its rows as a table of values (see ``update_values_sql``);
    #: 0: none, changed rows go through one executemany.
    update_values_rows: int = 0
    #: Rows per multi-row INSERT at most (keeps statements and packets reasonable).
    max_insert_rows: ClassVar[int] = 1000
    #: The driver understands executemany efficiently for INSERTs with no RETURNING.
    executemany_insert: ClassVar[bool] = True
    #: Operator for case-insensitive LIKE, or None to compare lower() of both sides.
    ilike_operator: ClassVar[str | None] = None
    #: DDL type names by ColumnType.kind; entries may use {length}, {precision}, {scale}.
    type_names: ClassVar[dict[str, str]] = {}
    #: How raw SQL is lexed when ``execute()`` binds ``:name`` (see ``sql.bind_named``):
    #: backslash escapes in '...' and "..." (MySQL), E'...' strings and $tag$ quotes
    #: (PostgreSQL), ``#`` comments and ``--`` only before a space (MySQL).
    backslash_escapes: ClassVar[bool] = False
    e_strings: ClassVar[bool] = False
    dollar_quotes: ClassVar[bool] = False
    mysql_comments: ClassVar[bool] = False
    #: SQLSTATE / error codes that mean "retry the transaction".
    retryable_codes: ClassVar[frozenset[str]] = frozenset()
    #: Row-locking suffix for SELECT (SQLite locks the whole database instead).
    for_update_sql: ClassVar[str] = " FOR UPDATE"
    #: Wrap Numeric function results in ``CAST(... AS NUMERIC)`` (SQLite binds decimals as text).
    cast_numeric_results: ClassVar[bool] = False
    #: ``SELECT ... FOR UPDATE`` locks rows (SQLite locks the whole database on write instead).
    row_locks: ClassVar[bool] = True
    #: ``FOR UPDATE OF table`` chooses the tables whose rows are locked.
    lock_of: ClassVar[bool] = True
    #: How to insert a row that takes every column's default.
    default_values_sql: ClassVar[str] = "DEFAULT VALUES"
    #: NULLs sort before every other value in ascending order (after them when descending);
    #: PostgreSQL sorts them last. ``stream()`` pages by key and must know where they are.
    nulls_first: ClassVar[bool] = True
    #: Foreign keys may name tables that do not exist yet (no ALTER needed for cycles).
    inline_forward_fks: ClassVar[bool] = False
    #: Words after CREATE TABLE (...), such as the engine and charset on MySQL.
    table_suffix: str = ""
    #: JSON numbers are kept as decimals and printed without an exponent (PostgreSQL's JSONB):
    #: floats are written as digits with a fraction, or ``1e+16`` would read back as an int.
    json_float_fraction: ClassVar[bool] = False

    def __init__(self) -> None:
        self._bind_cache: dict[tuple[ColumnType, str | None], Processor | None] = {}
        self._bind_by_id: dict[int, tuple[ColumnType, Processor | None]] = {}
        self._result_by_id: dict[int, tuple[ColumnType, Processor | None]] = {}
        self._result_cache: dict[ColumnType, Processor | None] = {}
        self.server_version: tuple[int, ...] = ()

    # -- connection ------------------------------------------------------------------------------

    def connect(self, url: URL, options: dict[str, Any]) -> DBAPIConnection:
        """Open a new DB-API connection (the driver is imported here, not at module import)."""
        raise NotImplementedError

    def needs_keeper(self, url: URL) -> bool:
        """Whether the database disappears when its last connection closes (in-memory SQLite)."""
        return False

    def initialize(self, raw: DBAPIConnection) -> None:
        """Read version and limits from the first live connection."""

    def on_connect(self, raw: DBAPIConnection, isolation_level: str | None) -> None:
        """Prepare a fresh connection (session settings, isolation level)."""

    def check_isolation_level(self, isolation_level: str) -> None:
        """Refuse, with a ConfigurationError, a level this backend does not have.

        Called when the Database is built; a dialect that leaves it to ``on_connect`` reports
        the mistake at the first connection instead.
        """

    def set_read_only(self, raw: DBAPIConnection, on: bool) -> None:
        """Make the server refuse (``on``) or allow writes on a connection with no open transaction."""
        raise NotImplementedError

    def begin(self, raw: DBAPIConnection) -> None:
        """Start a transaction explicitly; drivers that begin implicitly do nothing."""

    def commit(self, raw: DBAPIConnection) -> None:
        """Commit the current transaction."""
        raw.commit()

    def rollback(self, raw: DBAPIConnection) -> None:
        """Roll the current transaction back."""
        raw.rollback()

    def is_disconnect(self, exc: BaseException) -> bool:
        """Whether a driver error means the connection is unusable."""
        return False

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's exception classes, translated into mapper.errors by the engine.

        Dialects add theirs to these: a str that cannot be encoded (a lone surrogate) fails
        inside the driver with UnicodeEncodeError, which is a bad value like any other.
        """
        return (UnicodeEncodeError,)

    def ping(self, raw: DBAPIConnection) -> bool:
        """Whether an idle connection still works: before the pool lends it, and before a
        session's next transaction runs on it (``pre_ping``)."""
        return True

    def error_code(self, exc: BaseException) -> str | None:
        """The SQLSTATE or vendor code of a driver error, as a string."""
        return None

    # -- errors -----------------------------------------------------------------------------------

    def error_class(self, exc: BaseException) -> type[errors.DatabaseError]:
        """Our DatabaseError subclass for a driver exception, by DB-API class name."""
        if isinstance(exc, UnicodeEncodeError):
            return errors.DataError
        for klass in type(exc).__mro__:
            found = errors.DBAPI_ERRORS.get(klass.__name__)
            if found is not None:
                return found
        return errors.DatabaseError

    # -- identifiers and values -----------------------------------------------------------------

    def quote(self, name: str) -> str:
        """Quote an identifier (names are validated by the mapping registry as well)."""
        q = self.quote_char
        return f"{q}{name.replace(q, q + q)}{q}"

    def bind_processor(self, type_: ColumnType) -> Processor | None:
        """A function converting Python values to driver values for this type, or None.

        It raises ``DataError`` naming the column for a value the type refuses on every
        backend (see ``values``); nothing has been sent then.
        """
        # Each column holds its own type instance: look it up by identity first (hashing a
        # type hashes its attributes), keeping the instance so that its id stays its own.
        hit = self._bind_by_id.get(id(type_))
        if hit is not None and hit[0] is type_:
            return hit[1]
        # Keyed by column as well: equal types of two columns name different columns in errors.
        key = (type_, type_.column)
        try:
            proc = self._bind_cache[key]
        except KeyError:
            proc = self._bind_cache[key] = self._make_bind(type_)
        self._bind_by_id[id(type_)] = (type_, proc)
        return proc

    def result_processor(self, type_: ColumnType) -> Processor | None:
        """A function converting driver values to Python values for this type, or None."""
        hit = self._result_by_id.get(id(type_))  # by identity first, as bind_processor
        if hit is not None and hit[0] is type_:
            return hit[1]
        try:
            proc = self._result_cache[type_]
        except KeyError:
            proc = self._result_cache[type_] = self._make_result(type_)
        self._result_by_id[id(type_)] = (type_, proc)
        return proc

    def _make_bind(self, type_: ColumnType) -> Processor | None:
        if isinstance(type_, Enum):
            return _enum_bind(type_.enum_class)
        if type_.kind == "json":
            return values.json_bind(type_, self.json_float_fraction)
        if type_.kind == "uuid":
            return lambda v: None if v is None else str(v)
        if isinstance(type_, Float):
            return values.float_bind(type_)
        if isinstance(type_, Numeric):
            return values.numeric_bind(type_, as_text=False)
        if isinstance(type_, DateTime) and not type_.timezone:
            return values.naive_datetime_bind(type_)
        if isinstance(type_, Time):
            return values.time_bind(type_)
        return None

    def _make_result(self, type_: ColumnType) -> Processor | None:
        kind = type_.kind
        if isinstance(type_, Enum):
            return _enum_result(type_.enum_class)
        if kind == "json":
            return lambda v: json.loads(v) if isinstance(v, (str, bytes)) else v
        if kind == "uuid":
            return lambda v: v if v is None or isinstance(v, uuid.UUID) else uuid.UUID(str(v))
        if kind == "boolean":
            return lambda v: v if v is None or isinstance(v, bool) else bool(v)
        if kind == "numeric":
            return lambda v: v if v is None or isinstance(v, Decimal) else Decimal(str(v))
        if kind == "float":
            return lambda v: v if v is None or isinstance(v, float) else float(v)
        return None

    def key_params(self, cols: Sequence[Column], keys: Sequence[Any]) -> list[Any]:
        """Parameters matching ``keys`` against ``cols``, as ``Compiler.key_condition`` expects.

        One column: the values, or one array of them where IN lists are arrays; several
        columns: the row values flattened.
        """
        return self.key_binder(cols)(keys)

    def key_binder(self, cols: Sequence[Column]) -> Callable[[Sequence[Any]], list[Any]]:
        """``key_params`` for fixed ``cols``, with the conversions looked up once (for reuse)."""
        binds = [self.bind_processor(c.type) for c in cols]
        array_in = self.array_in
        if len(cols) == 1:
            b = binds[0]

            def one(keys: Sequence[Any]) -> list[Any]:
                vals = list(keys) if b is None else [k if k is None else b(k) for k in keys]
                return [vals] if array_in else vals

            return one

        def many(keys: Sequence[Any]) -> list[Any]:
            out: list[Any] = []
            for key in keys:
                out += [v if b is None or v is None else b(v) for b, v in zip(binds, key)]
            return out

        return many

    # -- DDL --------------------------------------------------------------------------------------

    def type_sql(self, col: Column, autoincrement: bool) -> str:
        """The DDL type of a column (with the autoincrement spelling where it is one)."""
        t = col.type
        template = self.type_names[t.kind]
        if isinstance(t, String) and t.length is None:
            template = self.type_names["text"]
        precision, scale = t.digits if isinstance(t, Numeric) else (38, 10)
        return template.format(length=getattr(t, "length", None) or 255, precision=precision, scale=scale)

    def autoincrement_clause(self, col: Column) -> str:
        """Words after the type that make the database generate the key."""
        return ""

    def inline_primary_key(self, table: Table) -> bool:
        """Whether the primary key is declared on the column (SQLite rowid alias)."""
        return False

    def existing_tables_sql(self) -> str:
        """SQL returning the names of the tables that exist (one column)."""
        raise NotImplementedError

    def create_index_sql(self, name: str, table: str, columns: Sequence[str], unique: bool) -> str:
        """CREATE INDEX statement."""
        cols = ", ".join(self.quote(c) for c in columns)
        kind = "UNIQUE INDEX" if unique else "INDEX"
        return f"CREATE {kind} {self.quote(name)} ON {self.quote(table)} ({cols})"

    def drop_tables_sql(self, tables: Sequence[str]) -> list[str]:
        """Statements that drop these tables (given child-first), whatever references them."""
        return [f"DROP TABLE IF EXISTS {self.quote(t)}" for t in tables]

    def sync_sequence_sql(self, table: str, column: str) -> str | None:
        """SQL that moves a key generator past keys inserted explicitly (None where it follows by itself)."""
        return None

    def keys_per_statement(self, ncols: int, n: int) -> int:
        """How many of ``n`` keys of ``ncols`` columns one statement matches.

        All of them where one array parameter carries a one-column key; else as many as the
        parameter limit and the longest row-value list the server takes allow.
        """
        if ncols == 1:
            return max(1, n if self.array_in else self.max_params)
        return max(1, min(self.max_params // ncols, self.max_row_values))

    def upsert_sql(self, table: str, columns: Sequence[str], nrows: int, conflict: Sequence[str], update: Sequence[str],
                   returning: Sequence[str]) -> str:
        """A multi-row INSERT that updates ``update`` columns of a row whose ``conflict``
        columns (a primary or unique key) already exist, with RETURNING when asked.

        ``ON CONFLICT (...) DO UPDATE SET c = excluded.c`` (PostgreSQL, SQLite); with nothing
        to update, ``DO NOTHING`` would return no row, so the first key column is set to itself.
        """
        q = self.quote
        row = "(" + ", ".join([self.marker] * len(columns)) + ")"
        sql = f"INSERT INTO {q(table)} (" + ", ".join(q(c) for c in columns) + ") VALUES " + ", ".join([row] * nrows)
        sets = update or conflict[:1]
        sql += " ON CONFLICT (" + ", ".join(q(c) for c in conflict) + ") DO UPDATE SET "
        sql += ", ".join(f"{q(c)} = excluded.{q(c)}" for c in sets)
        if returning:
            sql += " RETURNING " + ", ".join(q(c) for c in returning)
        return sql

    def skip_existing_sql(self, columns: Sequence[str]) -> str:
        """The clause after an INSERT's VALUES that skips a row whose key already exists.

        Only key conflicts are skipped (a foreign-key or NOT NULL failure still raises), which
        is why it is ``ON CONFLICT DO NOTHING`` and never MySQL's ``INSERT IGNORE``.
        """
        return " ON CONFLICT DO NOTHING"

    def insert_arrays_sql(self, table: str, columns: Sequence[Column], returning: Sequence[str]) -> str | None:
        """An INSERT of many rows that binds one array per column, or None where there is none.

        The rows must be inserted (and their generated keys drawn) in array order, so that
        sorting the generated keys pairs them with the rows as for a multi-row VALUES.
        """
        return None

    def update_arrays_sql(self, table: str, set_columns: Sequence[Column], keys: Sequence[Column], version: Column | None) -> str | None:
        """An UPDATE of many rows by key that binds one array per column (set columns, keys,
        then the version), or None where there is none. Its row count is the rows matched."""
        return None

    def update_values_sql(
        self, table: str, set_columns: Sequence[Column], keys: Sequence[Column], version: Column | None, n: int
    ) -> str | None:
        """An UPDATE of ``n`` rows by key that binds them as a table of values, one row after
        another (each: the set values, the keys, then the old version), or None where there is
        none. Its row count is the rows matched, so a stale row is found as with one UPDATE each."""
        return None

    def delete_arrays_sql(self, table: str, keys: Sequence[Column], version: Column | None) -> str | None:
        """A DELETE of many rows by key (and version) that binds one array per column (the
        keys, then the version), or None where there is none. Its row count is the rows deleted."""
        return None

    def limit_sql(self, limit: int | None, offset: int | None) -> str:
        """The LIMIT/OFFSET clause, with numbers validated as ints by the query."""
        out = ""
        if limit is not None:
            out += f" LIMIT {int(limit)}"
        if offset:
            if limit is None:
                out += f" LIMIT {self.no_limit}"
            out += f" OFFSET {int(offset)}"
        return out

    def lock_sql(self, shared: bool, nowait: bool, skip_locked: bool, of: Sequence[str]) -> str:
        """The row-lock clause after a SELECT (``of``: quoted table names or aliases)."""
        sql = " FOR SHARE" if shared else " FOR UPDATE"
        if of:
            sql += " OF " + ", ".join(of)
        if nowait:
            sql += " NOWAIT"
        if skip_locked:
            sql += " SKIP LOCKED"
        return sql

    #: What LIMIT means "no limit" where OFFSET needs a LIMIT.
    no_limit: ClassVar[str] = "-1"

    def savepoint_sql(self, name: str) -> str:
        """SAVEPOINT statement."""
        return f"SAVEPOINT {name}"

    def release_savepoint_sql(self, name: str) -> str:
        """RELEASE SAVEPOINT statement."""
        return f"RELEASE SAVEPOINT {name}"

    def rollback_savepoint_sql(self, name: str) -> str:
        """ROLLBACK TO SAVEPOINT statement."""
        return f"ROLLBACK TO SAVEPOINT {name}"

    def now(self) -> _dt.datetime:
        """The timestamp the flush writes for created_at/updated_at (aware UTC)."""
        return _dt.datetime.now(_dt.timezone.utc)


def utc_naive_bind(type_: DateTime) -> Processor | None:
    """Bind aware datetimes as naive UTC (for backends without a zone-aware type)."""
    if not type_.timezone:
        return None
    return lambda v: None if v is None else _to_utc_naive(v)
