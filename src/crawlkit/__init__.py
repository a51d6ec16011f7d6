"""crawlkit: a concurrent web-crawling framework.

The event loop does I/O only (fetching, the frontier, output); spider callbacks run in a pool
of parser worker processes. See docs/architecture.md for the data flow.
"""

__version__ = "0.1.0"
