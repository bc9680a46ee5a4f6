"""The unit of work: what a flush plans, writes and mirrors, and what commit and rollback restore.

``cascade``, ``ordering`` and ``changes`` decide (pure, no I/O); ``execute`` writes a flush through
the connection it is handed.
"""
