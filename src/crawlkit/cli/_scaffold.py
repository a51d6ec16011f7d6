"""``crawlkit new NAME URL``: a ready-to-run spider module written from a template.

The arguments end up in Python source that ``crawlkit list`` and ``crawl`` import, so none of
them may become code: the name must be an identifier, the URL an http(s) URL without the
characters a URL never holds unescaped (quotes, backslashes, spaces, control characters: they
could close the docstring or the line), and every literal is written with ``repr()``.
"""

from __future__ import annotations

import keyword
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["new_spider", "spider_source"]

_TEMPLATE = '''\
"""A spider for {host}, made by `crawlkit new`.

Run it with `crawlkit crawl {name} -o {name}.jsonl`; try selectors first with
`crawlkit shell {url_text}`.
"""

from collections.abc import Iterator
from typing import Any

from crawlkit import Response, Spider


class {class_name}(Spider):
    name = {name_literal}
    allowed_domains = [{host_literal}]
    start_urls = [{url_literal}]

    def parse(self, response: Response) -> Iterator[Any]:
        # One item per page: change the selectors to pick out what you need.
        title = response.css_first("title")
        yield {{
            "url": response.url,
            "title": title.text(strip=True) if title is not None else None,
        }}
        # Follow every link; allowed_domains keeps the crawl on this site. Set a depth_limit in
        # custom_settings to stay near the start page: custom_settings = {{"depth_limit": 2}}.
        yield from response.follow_all(css="a[href]")
'''


def _check_name(name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ConfigError(
            f"spider name {name!r} must be a Python identifier (letters, digits and _, not starting "
            "with a digit or _, not a keyword): it names the module spiders/NAME.py"
        )


# Not in a URL as RFC 3986 writes it (they are percent-encoded there), and able to end a Python
# string, a docstring or a comment: refused rather than escaped, so the docstring shows the URL.
_NOT_IN_URLS = frozenset('"\\<>{}|^`')


def _check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        parts = None
    unsafe = any(c in _NOT_IN_URLS or c.isspace() or not c.isprintable() for c in url)
    if parts is None or unsafe or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"start URL {url!r} must be an absolute http:// or https:// URL, its quotes, spaces "
            "and backslashes percent-encoded"
        )
    return parts.hostname


def spider_source(name: str, url: str) -> str:
    """The module text of a new spider named ``name`` that starts at ``url``."""
    _check_name(name)
    host = _check_url(url)
    class_name = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) + "Spider"
    return _TEMPLATE.format(
        name=name,
        host=host,
        url_text=url,
        class_name=class_name,
        name_literal=repr(name),
        host_literal=repr(host),
        url_literal=repr(url),
    )


def new_spider(name: str, url: str, folder: Path) -> Path:
    """Write ``folder/NAME.py``; refuses to replace a file that exists."""
    source = spider_source(name, url)
    path = folder / f"{name}.py"
    if path.exists():
        raise ConfigError(f"{path} already exists; choose another name or remove it first")
    folder.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as f:  # "x": never replace, even if created meanwhile
        f.write(source)
    return path
