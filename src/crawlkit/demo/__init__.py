"""The generated demo bookshop: ``python -m crawlkit.demo --port 8080`` serves it on loopback.

The demo (``scripts/demo``), the tests and the benchmark all use this one generator.
"""

from ._site import (
    BOOKS_PER_PAGE,
    CATALOGUE_REDIRECT,
    MISSING_BOOK,
    DemoSite,
    Page,
    expected_items_for,
    generate,
    main,
    make_app,
    running,
    serve,
)

__all__ = [
    "BOOKS_PER_PAGE",
    "CATALOGUE_REDIRECT",
    "MISSING_BOOK",
    "DemoSite",
    "Page",
    "expected_items_for",
    "generate",
    "main",
    "make_app",
    "running",
    "serve",
]
