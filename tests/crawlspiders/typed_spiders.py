"""Spiders whose items are dataclasses, attrs classes and pydantic models (for test_items.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import attrs
from pydantic import BaseModel, Field

from crawlkit import Response
from crawlspiders.plain_spiders import GraphBase


@dataclasses.dataclass
class PageData:
    n: int
    title: str
    url: str


@attrs.define
class PageAttrs:
    n: int
    title: str
    url: str


class PageModel(BaseModel):
    n: int = Field(lt=30)
    title: str
    url: str


class TypedItems(GraphBase):
    """Yields each page as a dataclass, an attrs class or a pydantic model (``kind``)."""

    name = "typed"
    kind = "dataclass"

    def parse(self, response: Response) -> Iterator[Any]:
        data = self.page(response)
        data["n"] = int(data["n"])
        cls = {"dataclass": PageData, "attrs": PageAttrs, "pydantic": PageModel}[self.kind]
        if self.kind != "pydantic" or data["n"] < 30:
            yield cls(**data)
        yield from response.follow_all(css="a.graph")


class ValidatedItems(GraphBase):
    """Yields dicts with ``n`` as text; ``PageModel`` turns it into an int and rejects n >= 30."""

    name = "validated"
    item_type = PageModel

    def parse(self, response: Response) -> Iterator[Any]:
        yield self.page(response)
        yield from response.follow_all(css="a.graph")
