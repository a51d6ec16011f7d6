"""What a render does before the page is read, as plain data, checked up front.

A request that asks for a browser (``Request(url, render=True, wait_for=..., actions=[...])``)
carries its plan as JSON-like data, so that it stays storable in every frontier: ``wait_for`` and
a list of ``actions``. ``RenderPlan.parse()`` turns that data into typed steps and rejects a bad
plan at once, with the step's index and what is wrong, rather than in the middle of a crawl;
``to_data()`` gives back the same plain data. No browser is needed here: the plan is checked
where the request is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "LOAD_STATES",
    "Click",
    "Evaluate",
    "Fill",
    "RenderPlan",
    "Scroll",
    "Step",
    "Wait",
    "WaitFor",
]

LOAD_STATES = ("load", "domcontentloaded", "networkidle")
_SELECTOR_STATES = ("attached", "visible", "hidden", "detached")
_MAX_REPEAT = 1000
_MAX_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Click:
    """Click ``selector``; with ``repeat`` > 1, again while it is there (a "Load more" button)."""

    selector: str
    repeat: int = 1


@dataclass(frozen=True, slots=True)
class Fill:
    selector: str
    value: str


@dataclass(frozen=True, slots=True)
class Scroll:
    """Scroll to the bottom until nothing new loads, within steps, page height and seconds."""

    max_steps: int = 20
    max_height: int = 200_000
    max_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class WaitFor:
    selector: str
    state: str = "attached"


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Run ``script`` in the page; its JSON result is kept under ``key``."""

    script: str
    key: str


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


Step: TypeAlias = Click | Fill | Scroll | WaitFor | Evaluate | Wait

# Each step's verb and the options it takes besides it.
_OPTIONS: dict[str, frozenset[str]] = {
    "click": frozenset({"repeat"}),
    "fill": frozenset({"value"}),
    "scroll": frozenset({"max_steps", "max_height", "max_seconds"}),
    "wait_for": frozenset({"state"}),
    "evaluate": frozenset({"as"}),
    "wait": frozenset(),
}


class _Checker:
    def __init__(self, where: str, data: Mapping[str, Any]) -> None:
        self.where = where
        self.data = data

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.where}: {what}")

    def text(self, key: str, *, empty: bool = False) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.fail(f"{key!r} must be a non-empty string, not {value!r}")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"{key!r} must be a whole number from {low} to {high}, not {value!r}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.data.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low < value <= high
        ):
            raise self.fail(
                f"{key!r} must be a number of seconds above {low} and at most {high}, not {value!r}"
            )
        return float(value)


def _parse_step(index: int, raw: object) -> Step:
    where = f"actions[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a step is a dict such as {{'click': 'button#more'}}, not {raw!r}")
    verbs = [key for key in raw if key in _OPTIONS]
    if len(verbs) != 1:
        named = ", ".join(sorted(_OPTIONS))
        found = "none" if not verbs else " and ".join(repr(v) for v in verbs)
        raise ValueError(f"{where}: a step names exactly one of {named}; found {found} in {dict(raw)!r}")
    verb = verbs[0]
    unknown = set(raw) - {verb} - _OPTIONS[verb]
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS[verb])) or "none"
        raise ValueError(f"{where}: {verb!r} does not take {sorted(unknown)} (its options: {allowed})")
    check = _Checker(f"{where} ({verb})", raw)
    if verb == "click":
        return Click(check.text("click"), check.integer("repeat", 1, 1, _MAX_REPEAT))
    if verb == "fill":
        if "value" not in raw:
            raise check.fail("'fill' needs a 'value'")
        return Fill(check.text("fill"), check.text("value", empty=True))
    if verb == "scroll":
        if raw["scroll"] != "bottom":
            raise check.fail(f"'scroll' takes 'bottom', not {raw['scroll']!r}")
        return Scroll(
            check.integer("max_steps", 20, 1, _MAX_REPEAT),
            check.integer("max_height", 200_000, 1, 10_000_000),
            check.number("max_seconds", 10.0, 0.0, 600.0),
        )
    if verb == "wait_for":
        state = raw.get("state", "attached")
        if state not in _SELECTOR_STATES:
            raise check.fail(f"'state' is one of {', '.join(_SELECTOR_STATES)}, not {state!r}")
        return WaitFor(check.text("wait_for"), state)
    if verb == "evaluate":
        return Evaluate(check.text("evaluate"), check.text("as"))
    return Wait(check.number("wait", 0.0, 0.0, _MAX_WAIT))


def _step_data(step: Step) -> dict[str, Any]:
    match step:
        case Click(selector, repeat):
            return {"click": selector} | ({"repeat": repeat} if repeat != 1 else {})
        case Fill(selector, value):
            return {"fill": selector, "value": value}
        case Scroll(max_steps, max_height, max_seconds):
            return {
                "scroll": "bottom",
                "max_steps": max_steps,
                "max_height": max_height,
                "max_seconds": max_seconds,
            }
        case WaitFor(selector, state):
            return {"wait_for": selector, "state": state}
        case Evaluate(script, key):
            return {"evaluate": script, "as": key}
        case Wait(seconds):
            return {"wait": seconds}
    raise AssertionError(step)  # pragma: no cover - the union is exhausted above


@dataclass(frozen=True, slots=True)
class RenderPlan:
    """What one render waits for and does; ``timeout`` (seconds) overrides ``render_timeout``.

    ``wait_for`` is a load state (``"load"``, ``"domcontentloaded"``, ``"networkidle"``) or a
    CSS selector that must be in the page; ``None`` waits for ``"load"``.
    """

    wait_for: str | None = None
    actions: tuple[Step, ...] = ()
    screenshot: bool = False
    pdf: bool = False
    timeout: float | None = None

    @classmethod
    def parse(
        cls,
        *,
        wait_for: str | None = None,
        actions: Sequence[Mapping[str, Any]] | None = None,
        screenshot: bool = False,
        pdf: bool = False,
        timeout: float | None = None,
    ) -> RenderPlan:
        """Check plain data (as a request carries it) and build the plan; ``ValueError`` if wrong."""
        if wait_for is not None and (not isinstance(wait_for, str) or not wait_for.strip()):
            raise ValueError(
                f"wait_for is a load state ({', '.join(LOAD_STATES)}) or a CSS selector, not {wait_for!r}"
            )
        if actions is None:
            actions = []
        if isinstance(actions, str | bytes | Mapping) or not isinstance(actions, Sequence):
            raise ValueError(f"actions is a list of steps, not {type(actions).__name__}")
        steps = tuple(_parse_step(i, raw) for i, raw in enumerate(actions))
        keys = [s.key for s in steps if isinstance(s, Evaluate)]
        if len(keys) != len(set(keys)):
            raise ValueError(f"actions: two 'evaluate' steps keep their result under the same key ({keys})")
        for name, flag in (("screenshot", screenshot), ("pdf", pdf)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} is true or false, not {flag!r}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600
        ):
            raise ValueError(f"timeout is a number of seconds above 0 and at most 3600, not {timeout!r}")
        return cls(wait_for, steps, screenshot, pdf, None if timeout is None else float(timeout))

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RenderPlan:
        """The plan from its plain-data form (``to_data()``'s, or a user's dict)."""
        unknown = set(data) - {"wait_for", "actions", "screenshot", "pdf", "timeout"}
        if unknown:
            raise ValueError(f"a render plan does not take {sorted(unknown)}")
        return cls.parse(**data)

    def to_data(self) -> dict[str, Any]:
        """Plain data (JSON-safe) that ``from_data()`` turns back into this plan."""
        data: dict[str, Any] = {}
        if self.wait_for is not None:
            data["wait_for"] = self.wait_for
        if self.actions:
            data["actions"] = [_step_data(s) for s in self.actions]
        if self.screenshot:
            data["screenshot"] = True
        if self.pdf:
            data["pdf"] = True
        if self.timeout is not None:
            data["timeout"] = self.timeout
        return data

    @property
    def load_state(self) -> str | None:
        """``wait_for`` when it names a load state, else None (it is a selector, or unset)."""
        return self.wait_for if self.wait_for in LOAD_STATES else None
