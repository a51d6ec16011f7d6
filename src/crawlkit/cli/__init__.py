"""The ``crawlkit`` command: crawls, the tool commands, the shared-crawl commands, the docs."""

from ._main import main

__all__ = ["main"]
