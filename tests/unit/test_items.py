"""Typed items: dataclasses, attrs classes and pydantic models as items, and ``item_type`` validation.

The crawls are real: the test site, the engine and two parser worker processes, where the
validation runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Site
from crawlkit import Request, Spider, SpiderError, crawl
from crawlkit.parsing._callbacks import CallbackRunner, ParseTask
from crawlkit.testing import response_from_html, run_callback
from crawlspiders.typed_spiders import PageModel, TypedItems, ValidatedItems
from support.testsite import reachable

SIZE = 40


def run(spider: type[Spider], out: Path, **kwargs: Any) -> tuple[Any, list[dict[str, Any]]]:
    settings = {"frontier": "memory", "parse_workers": 2, "progress": "off"}
    stats = crawl(spider, out, settings=settings, handle_signals=False, **kwargs)
    return stats, [orjson.loads(line) for line in out.read_bytes().splitlines()]


@pytest.mark.parametrize("kind", ["dataclass", "attrs", "pydantic"])
def test_typed_items_are_written_as_json_objects(site: Site, tmp_out: Path, kind: str) -> None:
    stats, items = run(TypedItems, tmp_out, base=site.base, size=str(SIZE), kind=kind)
    expected = sorted(reachable(SIZE))
    if kind == "pydantic":
        expected = [n for n in expected if n < 30]
    assert sorted(item["n"] for item in items) == expected
    assert all(set(item) == {"n", "title", "url"} for item in items)
    assert all(item["title"] == f"Page {item['n']}" for item in items)
    assert stats.ok and stats.items == len(expected)


def test_item_type_validates_every_item_in_the_workers(
    site: Site, tmp_out: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    stats, items = run(ValidatedItems, tmp_out, base=site.base, size=str(SIZE))
    valid = sorted(n for n in reachable(SIZE) if n < 30)
    invalid = sorted(n for n in reachable(SIZE) if n >= 30)
    assert invalid, "the graph must hold pages the model rejects"
    # Valid items come out as the model made them: "12" (text in the page) became 12.
    assert sorted(item["n"] for item in items) == valid
    assert all(isinstance(item["n"], int) for item in items)
    assert stats.items == len(valid)
    assert stats.failures["invalid_item"] == len(invalid) == stats.items_failed
    assert not stats.ok
    assert "invalid_item" in stats.summary()
    # Each rejection is logged (by the worker) with the field that failed and the value.
    err = capfd.readouterr().err
    assert err.count("not a valid PageModel: n: Input should be less than 30") == len(invalid)
    assert f"(got '{invalid[0]}')" in err


def test_run_callback_reports_invalid_items_with_the_field() -> None:
    html = '<h1 class="title">Page 31</h1><span class="n">31</span>'
    result = run_callback(ValidatedItems, html, url="http://127.0.0.1/graph/31", callback="parse")
    assert result.items == []
    assert result.invalid == ["not a valid PageModel: n: Input should be less than 30 (got '31')"]
    html = '<h1 class="title">Page 3</h1><span class="n">3</span>'
    result = run_callback(ValidatedItems, html, url="http://127.0.0.1/graph/3")
    assert result.items == [PageModel(n=3, title="Page 3", url="http://127.0.0.1/graph/3")]
    assert result.records == [{"n": 3, "title": "Page 3", "url": "http://127.0.0.1/graph/3"}]


def test_a_missing_field_is_named() -> None:
    class Missing(ValidatedItems):
        def parse(self, response: Any) -> Any:
            yield {"n": 1, "url": response.url}

    result = run_callback(Missing, response_from_html("<p></p>"))
    assert result.invalid == ["not a valid PageModel: title: Field required"]


def test_an_item_type_that_is_not_a_model_is_refused() -> None:
    class NotAModel(ValidatedItems):
        item_type = dict

    with pytest.raises(SpiderError, match=r"item_type must be a pydantic model class"):
        run_callback(NotAModel, "<p></p>")


def test_invalid_items_are_not_written_but_valid_ones_from_the_same_page_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Mixed(ValidatedItems):
        def parse(self, response: Any) -> Any:
            yield {"n": 1, "title": "one", "url": response.url}
            yield {"n": "many", "title": "bad", "url": response.url}
            yield PageModel(n=2, title="two", url=response.url)

    with caplog.at_level(logging.ERROR, logger="crawlkit.parse"):
        result = run_callback(Mixed, "<p></p>", url="http://127.0.0.1/x")
    assert [item.n for item in result.items] == [1, 2]
    assert result.invalid == [
        "not a valid PageModel: n: Input should be a valid integer, unable to parse string as an "
        "integer (got 'many')"
    ]
    assert "invalid item from http://127.0.0.1/x dropped" in caplog.text


def test_an_item_that_cannot_be_written_is_summarised_and_the_next_ones_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deep: dict[str, Any] = {}
    for _ in range(10_000):  # orjson gives up at 254 levels; repr() at Python's recursion limit
        deep = {"k": deep}

    class BadItems(Spider):
        name = "bad_items"

        def parse(self, response: Any) -> Any:
            yield {"n": 1}
            yield deep
            yield {"blob": "x" * 5_000_000, "obj": object()}
            yield {"n": 2}

    # As a parser worker runs it: items serialised to JSON lines there.
    runner = CallbackRunner(BadItems(), serialize_items=True, max_response_size=0)
    request = Request("http://127.0.0.1/x")
    with caplog.at_level(logging.ERROR, logger="crawlkit.parse"):
        outcome = runner.run(ParseTask(request, request.url, 200, [], b"<p></p>", ""))
    assert outcome.error is None
    assert outcome.items == [b'{"n":1}\n', b'{"n":2}\n'] and outcome.unserializable == 2
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and all(len(m) < 500 for m in messages)
    assert "Recursion limit reached (a dict, 1 keys: 'k')" in messages[0]
    assert "(a dict, 2 keys: 'blob', 'obj')" in messages[1]
