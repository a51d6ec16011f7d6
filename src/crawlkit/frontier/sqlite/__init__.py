"""The durable frontier: one SQLite database per job, owned by one thread."""

from ._frontier import SqliteFrontier

__all__ = ["SqliteFrontier"]
