"""Request(render=True, wait_for=..., actions=[...]): plain data, checked where it is made, kept."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from crawlkit import FormRequest, Request, Response, Spider
from crawlkit.http import RenderPlan, _rebuild_request

MORE = [{"click": "button#more", "repeat": 5}, {"scroll": "bottom"}]


def test_the_render_fields_are_a_checked_plan_kept_as_plain_data() -> None:
    r = Request("http://a.test/list", wait_for="a.product", actions=MORE, screenshot=True, render_timeout=9)
    assert r.render is True  # a plan implies render=True
    assert (
        r.render_plan
        == RenderPlan.parse(wait_for="a.product", actions=MORE, screenshot=True, timeout=9).to_data()
    )
    assert r.render_plan is not None and r.render_plan["actions"][1]["max_steps"] == 20  # defaults filled in
    assert Request("http://a.test/", render=True).render_plan == {}
    assert Request("http://a.test/").render is None  # the spider's render decides
    assert Request("http://a.test/", render=False).render is False
    assert Spider.render is False


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"actions": [{"clik": "a"}]},
            ValueError,
            r"a\.test/x: bad render plan: actions\[0\]: a step",
        ),
        ({"wait_for": ""}, ValueError, r"bad render plan: wait_for is a load state"),
        ({"render": False, "wait_for": "h1"}, ValueError, r"need render=True .*not render=False"),
        ({"render": True, "method": "POST"}, ValueError, r"only a GET request with no body can be rendered"),
        ({"render": "yes"}, TypeError, r"render must be True, False or None"),
        ({"render_timeout": 0}, ValueError, r"timeout is a number of seconds above 0"),
    ],
)
def test_a_bad_render_fails_where_the_request_is_made(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        Request("http://a.test/x", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "render"),
    [
        ({}, None),
        ({"render": None, "screenshot": 0, "pdf": False}, None),  # falsy flags plan nothing
        ({"actions": []}, {}),  # given, if empty: a render with the defaults
        ({"render": False}, False),
    ],
)
def test_arguments_that_are_given_but_empty_still_count(kwargs: dict[str, Any], render: object) -> None:
    assert Request("http://a.test/x", **kwargs).render_plan == (render if isinstance(render, dict) else None)
    assert Request("http://a.test/x", **kwargs).render is (
        None if render is None else bool(render is not False)
    )


def test_empty_actions_cannot_go_with_render_false() -> None:
    with pytest.raises(ValueError, match=r"need render=True"):
        Request("http://a.test/x", render=False, actions=[])


def test_response_follow_passes_the_plan_on() -> None:
    page = Response("http://a.test/list", 200, [], b'<a href="/p/1">1</a>', Request("http://a.test/list"))
    (link,) = page.follow_all(css="a", wait_for="h1.ready")
    assert link.url == "http://a.test/p/1" and link.render_plan == {"wait_for": "h1.ready"}
    with pytest.raises(ValueError, match="bad render plan"):
        page.follow("/p/2", actions="click")


@pytest.mark.parametrize("cls", [Request, FormRequest])
def test_the_render_survives_pickling_and_replace(cls: type[Request]) -> None:
    r = cls("http://a.test/list", wait_for="a.product", actions=MORE, errback="failed")
    copy = pickle.loads(pickle.dumps(r))
    assert type(copy) is cls
    assert (copy.render, copy.render_plan, copy.errback) == (True, r.render_plan, "failed")
    never = pickle.loads(pickle.dumps(cls("http://a.test/", render=False)))
    assert never.render is False
    assert r.replace(url="http://a.test/other").render_plan == r.render_plan
    assert r.replace(wait_for="li").render_plan == {**(r.render_plan or {}), "wait_for": "li"}
    off = r.replace(render=False)
    assert (off.render, off.render_plan) == (False, None)


def test_requests_pickled_before_rendering_existed_still_load() -> None:
    # The argument tuples that jobs stored before: no render field at the end.
    fields = ("http://a.test/", "GET", None, b"", None, {}, {}, 0, False, 0, None, False, 0, None)
    plain = _rebuild_request(*fields)
    with_cookies = _rebuild_request(*fields, None, "failed", {"sid": "1"})
    for old in (plain, with_cookies):
        back = pickle.loads(pickle.dumps(old))
        assert back.render is None and back.render_plan is None
    assert with_cookies.cookies == {"sid": "1"}
    # And a request that does not render still pickles as it did, so older versions read it.
    assert len(Request("http://a.test/").__reduce__()[1]) == len(fields)
