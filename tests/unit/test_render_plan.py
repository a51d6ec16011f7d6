"""RenderPlan: the plain data a render follows, checked where the request is built."""

from __future__ import annotations

from typing import Any

import pytest

from crawlkit.fetch import RenderPlan
from crawlkit.http._render_plan import Click, Evaluate, Scroll


def test_plain_data_round_trips() -> None:
    data: dict[str, Any] = {
        "wait_for": "a.product",
        "actions": [
            {"click": "button#more", "repeat": 2},
            {"fill": "#q", "value": ""},
            {"scroll": "bottom", "max_steps": 20, "max_height": 50_000, "max_seconds": 5.0},
            {"wait_for": "a.product", "state": "visible"},
            {"evaluate": "() => document.title", "as": "title"},
            {"wait": 0.5},
        ],
        "screenshot": True,
        "timeout": 12.0,
    }
    plan = RenderPlan.from_data(data)
    assert plan.actions[0] == Click("button#more", 2)
    assert plan.actions[4] == Evaluate("() => document.title", "title")
    assert RenderPlan.from_data(plan.to_data()) == plan
    assert plan.to_data() == data
    assert RenderPlan.parse(actions=[{"scroll": "bottom"}]).actions == (Scroll(),)
    assert RenderPlan.parse(wait_for="networkidle").load_state == "networkidle"
    assert RenderPlan.parse(wait_for="h1").load_state is None


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([{"clik": "a"}], r"actions\[0\]: a step names exactly one of click, evaluate, .*found none"),
        ([{"click": "a", "fill": "b"}], r"exactly one of .*found 'click' and 'fill'"),
        (["click a"], r"actions\[0\]: a step is a dict"),
        ([{"click": ""}], r"\(click\): 'click' must be a non-empty string"),
        ([{"click": "a", "repeat": 0}], r"'repeat' must be a whole number from 1 to 1000, not 0"),
        ([{"click": "a", "times": 2}], r"'click' does not take \['times'\] \(its options: repeat\)"),
        ([{"fill": "#q"}], r"'fill' needs a 'value'"),
        ([{"scroll": "top"}], r"'scroll' takes 'bottom', not 'top'"),
        ([{"wait_for": "a", "state": "shown"}], r"'state' is one of attached, visible"),
        ([{"evaluate": "1"}], r"'as' must be a non-empty string"),
        ([{"wait": -1}], r"'wait' must be a number of seconds above 0"),
        ([{"wait": 0.1}, {"evaluate": "1", "as": "k"}, {"evaluate": "2", "as": "k"}], r"the same key"),
        ({"click": "a"}, r"actions is a list of steps, not dict"),
    ],
)
def test_a_bad_plan_is_refused_up_front(actions: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RenderPlan.parse(actions=actions)


def test_bad_plan_options() -> None:
    with pytest.raises(ValueError, match="wait_for is a load state"):
        RenderPlan.parse(wait_for="")
    with pytest.raises(ValueError, match="timeout is a number of seconds"):
        RenderPlan.parse(timeout=0)
    with pytest.raises(ValueError, match="does not take"):
        RenderPlan.from_data({"wait": "load"})
