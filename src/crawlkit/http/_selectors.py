"""``response.css()`` results that speak parsel's language on top of selectolax.

Spiders ported from Scrapy write ``response.css("h1::text").get()`` and
``for row in response.css("tr"): row.css("td::attr(class)").getall()``. Matching stays in
selectolax (Lexbor, C, no lxml); this module adds the ``::text`` and ``::attr(name)``
pseudo-elements and parsel's ``get``/``getall``/``re``/``re_first``/``attrib`` on what comes back.

Elements come back as ``Node``: a thin wrapper that keeps every selectolax node method and property
(``text()``, ``attributes``, ``attrs``, ``css_first``, ``tag``, ``html``...) and adds parsel's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from re import Pattern
from typing import Any, SupportsIndex, TypeVar, overload

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = ["Node", "SelectorList", "Text", "href_of", "select", "select_first"]

_T = TypeVar("_T")

# A query that ends in a pseudo-element: what selectolax matches, the pseudo-element, its argument.
_PSEUDO = re.compile(
    r"""^(?P<base>.*?)(?P<space>\s*)::(?P<kind>text|attr)(?:\(\s*(?P<arg>[^)\s]+)\s*\))?\s*$""",
    re.DOTALL,
)
_TEXT_TAG = "-text"


def _extract(regex: str | Pattern[str], text: str) -> list[str]:
    """What parsel's ``re()`` returns: the ``extract`` group, else every group, else the matches."""
    pattern = re.compile(regex) if isinstance(regex, str) else regex
    if "extract" in pattern.groupindex:
        match = pattern.search(text)
        return [match.group("extract")] if match else []
    found = pattern.findall(text)
    if pattern.groups > 1:
        return [part for groups in found for part in groups]
    return found


class Text(str):
    """A ``::text`` or ``::attr()`` result: a plain string that also answers parsel's methods."""

    __slots__ = ()

    def get(self, default: str | None = None) -> str:
        return str.__str__(self)

    def getall(self) -> list[str]:
        return [str.__str__(self)]

    extract = get

    def re(self, regex: str | Pattern[str]) -> list[str]:
        return _extract(regex, self)

    def re_first(self, regex: str | Pattern[str], default: str | None = None) -> str | None:
        found = _extract(regex, self)
        return found[0] if found else default

    @property
    def attrib(self) -> dict[str, str]:
        return {}

    @property
    def root(self) -> str:
        return str.__str__(self)


class SelectorList(list[_T]):
    """A list of ``Node`` or ``Text`` results with parsel's ``SelectorList`` methods."""

    __slots__ = ()

    def get(self, default: str | None = None) -> str | None:
        """The first result as a string (an element as its HTML), or ``default``."""
        for result in self:
            return _as_string(result)
        return default

    def getall(self) -> list[str]:
        """Every result as a string (elements as their HTML)."""
        return [_as_string(result) for result in self]

    extract = getall

    def extract_first(self, default: str | None = None) -> str | None:
        return self.get(default)

    def re(self, regex: str | Pattern[str]) -> list[str]:
        """``regex`` applied to every result; groups as parsel returns them."""
        return [part for result in self for part in _extract(regex, _as_string(result))]

    def re_first(self, regex: str | Pattern[str], default: str | None = None) -> str | None:
        for result in self:
            found = _extract(regex, _as_string(result))
            if found:
                return found[0]
        return default

    @property
    def attrib(self) -> dict[str, str | None]:
        """The attributes of the first element ({} when there is none)."""
        for result in self:
            return result.attrib if isinstance(result, Node) else {}
        return {}

    def css(self, query: str) -> SelectorList[Any]:
        """``query`` run on every element here, results in order."""
        out: SelectorList[Any] = SelectorList()
        for result in self:
            if isinstance(result, Node):
                out.extend(result.css(query))
        return out

    def xpath(self, query: str, **kwargs: Any) -> SelectorList[Any]:
        raise AttributeError(
            "these results come from response.css() (selectolax, CSS only); "
            f"for XPath use response.xpath({query!r}) or response.selector.css(...).xpath(...)"
        )

    @overload
    def __getitem__(self, index: SupportsIndex) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> SelectorList[_T]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> _T | SelectorList[_T]:
        # parsel's slices are SelectorLists too: response.css("li")[1:].getall().
        if isinstance(index, slice):
            return SelectorList(list.__getitem__(self, index))
        return list.__getitem__(self, index)


def _as_string(result: object) -> str:
    if isinstance(result, Node):
        return result.get()
    return str.__str__(result) if isinstance(result, str) else str(result)


class Node:
    """A matched element: a selectolax node with parsel's methods added.

    Everything a ``LexborNode`` has works here unchanged (``text()``, ``attributes``, ``attrs``,
    ``css_first()``, ``tag``, ``html``, ``parent``...); ``css()`` also understands ``::text`` and
    ``::attr(name)``, and ``get()``, ``getall()``, ``re()``, ``re_first()``, ``attrib`` answer as
    parsel's ``Selector`` does. ``node.root`` is the selectolax node itself.
    """

    __slots__ = ("root",)

    def __init__(self, node: LexborNode) -> None:
        self.root = node

    # LexborNode cannot be subclassed (it is a final C type), and spiders and tests check
    # ``isinstance(node, LexborNode)``; reporting its class keeps those checks true.
    @property  # type: ignore[misc]
    def __class__(self) -> type[LexborNode]:  # type: ignore[override]
        return LexborNode

    # The node methods spiders use on every page, forwarded without a __getattr__ round trip.
    @property
    def attributes(self) -> dict[str, str | None]:
        return self.root.attributes

    def text(self, deep: bool = True, separator: str = "", strip: bool = False) -> str:
        return self.root.text(deep=deep, separator=separator, strip=strip)

    @property
    def tag(self) -> str | None:
        return self.root.tag

    @property
    def html(self) -> str | None:
        return self.root.html

    def __getattr__(self, name: str) -> Any:
        return getattr(self.root, name)

    # parsel's vocabulary.
    def css(self, query: str) -> SelectorList[Any]:
        return select(self.root, query, "css")

    def css_first(self, query: str, default: Any = None, strict: bool = False) -> Any:
        return select_first(self.root, query, default, "css_first")

    def get(self, default: str | None = None) -> str:
        return self.root.html or ""

    def getall(self) -> list[str]:
        return [self.get()]

    extract = get

    def re(self, regex: str | Pattern[str]) -> list[str]:
        return _extract(regex, self.get())

    def re_first(self, regex: str | Pattern[str], default: str | None = None) -> str | None:
        found = _extract(regex, self.get())
        return found[0] if found else default

    @property
    def attrib(self) -> dict[str, str | None]:
        return dict(self.root.attributes)

    def xpath(self, query: str, **kwargs: Any) -> Any:
        raise AttributeError(
            "this node comes from response.css() (selectolax, CSS only); "
            f"for XPath use response.xpath({query!r}) or response.selector"
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Node):
            return bool(self.root == other.root)
        return bool(self.root == other)

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return repr(self.root)


Root = LexborHTMLParser | LexborNode


def _selector_error(method: str, query: object, exc: Exception) -> Exception:
    """What was wrong with a selector, in words a spider author can act on."""
    if not isinstance(query, str):
        return TypeError(
            f"response.{method}() takes a CSS selector string, got {type(query).__name__} {query!r:.80}"
        )
    hint = ""
    stripped = query.lstrip()
    if stripped.startswith(("/", "(", "./")):
        hint = f"; it looks like XPath: use response.xpath({query!r})"
    elif "::" in query:
        hint = (
            "; the pseudo-elements supported are '::text' and '::attr(name)', once, at the end "
            "of the selector (e.g. 'h1::text', 'a.next::attr(href)'); "
            "for anything else use response.selector.css()"
        )
    return ValueError(f"response.{method}(): invalid CSS selector {query!r}: {exc}{hint}")


def _match(root: Root, query: str, method: str) -> list[LexborNode]:
    try:
        return root.css(query)
    except Exception as exc:
        raise _selector_error(method, query, exc) from None


def _split(query: str, method: str) -> tuple[str, bool, str | None] | None:
    """``query`` split at its pseudo-element: what selectolax matches, descendants or not, the attribute.

    ``None`` when the query has no pseudo-element. As in parsel, ``h1::text`` is the text nodes
    directly inside each ``h1``, ``h1 ::text`` every text node below it, and a bare ``::text`` or
    ``::attr(href)`` applies to the node it is called on and everything below. An empty base
    means that node itself.
    """
    if "::" not in query:
        return None
    found = _PSEUDO.match(query)
    if found is None or "::" in found["base"] or (found["kind"] == "attr") != bool(found["arg"]):
        raise _selector_error(method, query, ValueError("unsupported pseudo-element"))
    base = found["base"].strip()
    if base.endswith(","):
        raise _selector_error(method, query, ValueError("a group with a pseudo-element"))
    if base == "*":
        base = ""
    return base, not base or bool(found["space"]), found["arg"]


def _values(nodes: list[LexborNode], deep: bool, attr: str | None) -> Iterator[str]:
    return _texts(nodes, deep) if attr is None else _attrs(nodes, deep, attr)


def _texts(nodes: list[LexborNode], deep: bool) -> Iterator[str]:
    if not deep:
        for node in nodes:
            for child in node.iter(include_text=True):
                if child.tag == _TEXT_TAG:
                    yield child.text_content or ""
        return
    seen: set[int] | None = set() if len(nodes) > 1 else None
    for node in nodes:
        for child in node.traverse(include_text=True):
            if child.tag != _TEXT_TAG:
                continue
            if seen is not None:
                # Nested matches (div ::text over nested divs) must not give a text node twice.
                key = child.mem_id
                if key in seen:
                    continue
                seen.add(key)
            yield child.text_content or ""


def _attrs(nodes: list[LexborNode], deep: bool, name: str) -> Iterator[str]:
    elements: Iterable[LexborNode] = (e for node in nodes for e in node.traverse()) if deep else nodes
    seen: set[int] | None = set() if deep and len(nodes) > 1 else None
    for element in elements:
        value = element.attributes.get(name) if element.is_element_node else None
        if value is None:
            continue
        if seen is not None:
            if element.mem_id in seen:
                continue
            seen.add(element.mem_id)
        yield value


def select(root: Root, query: str, method: str = "css") -> SelectorList[Any]:
    """Every match of ``query`` under ``root``: ``Node``s, or ``Text``s for a pseudo-element."""
    if type(query) is str and "::" not in query:  # most queries: straight to selectolax
        try:
            nodes = root.css(query)
        except Exception as exc:
            raise _selector_error(method, query, exc) from None
        return SelectorList(map(Node, nodes))
    split = _split(query, method) if isinstance(query, str) else None
    if split is None:
        return SelectorList(map(Node, _match(root, query, method)))
    base, deep, attr = split
    nodes = _match(root, base, method) if base else _self(root)
    return SelectorList(map(Text, _values(nodes, deep, attr)))


def select_first(root: Root, query: str, default: Any, method: str = "css_first") -> Any:
    """The first match of ``query`` under ``root``, or ``default``."""
    if type(query) is str and "::" not in query:  # most queries: straight to selectolax
        try:
            node = root.css_first(query)
        except Exception as exc:
            raise _selector_error(method, query, exc) from None
        return default if node is None else Node(node)
    split = _split(query, method) if isinstance(query, str) else None
    if split is not None:
        base, deep, attr = split
        if base:
            # Most pages answer from the first match: look there before matching the whole page.
            first = _first(root, base, method)
            if first is None:
                return default
            for value in _values([first], deep, attr):
                return Text(value)
        for result in select(root, query, method):
            return result
        return default
    node = _first(root, query, method)
    return default if node is None else Node(node)


def _first(root: Root, query: str, method: str) -> LexborNode | None:
    try:
        return root.css_first(query)
    except Exception as exc:
        raise _selector_error(method, query, exc) from None


def _self(root: Root) -> list[LexborNode]:
    top = root.root if isinstance(root, LexborHTMLParser) else root
    return [top] if top is not None else []


def href_of(target: object, method: str) -> str | None:
    """The URL that a ``follow()`` target stands for; ``None`` for an element without ``href``.

    A string (a ``::attr(href)`` result too), a ``Node`` or selectolax node, or a parsel
    ``Selector`` from ``response.xpath()``: an element gives its ``href``, a text or attribute
    result its value.
    """
    if isinstance(target, str):
        return target
    if type(target) is Node:
        return target.root.attributes.get("href")
    if type(target) is LexborNode:
        return target.attributes.get("href")
    if isinstance(target, list):
        raise TypeError(
            f"response.{method}() takes one link, got a list of {len(target)}; "
            "use response.follow_all() for many"
        )
    root = getattr(target, "root", None)  # a parsel Selector
    if isinstance(root, str):
        return root
    attrib = getattr(target, "attrib", None)
    if root is not None and isinstance(attrib, dict):
        href = attrib.get("href")
        return href if isinstance(href, str) else None
    raise TypeError(
        f"response.{method}() takes a URL, a node or a selector, not {type(target).__name__} {target!r:.80}"
    )
