"""The Chinook sample database (a digital music store) mapped with ``mapper``.

- ``model``: plain ``attrs`` classes; they import nothing from ``mapper``.
- ``mappers``: how they are stored (snake_case tables as in Chinook's PostgreSQL scripts);
  ``CHINOOK_MAPPERS`` lists them all.
- ``load``: ``load_chinook(db)`` inserts the bundled data (``data/chinook.json``, MIT, see
  ``data/LICENSE.md``) through a session, as domain objects.

This package imports nothing itself, so ``import domain.chinook.model`` stays persistence-free.
"""
