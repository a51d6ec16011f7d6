"""What a browser submits for a ``<form>`` on a page: the form, its fields, its button, its target.

``FormRequest.from_response()`` rests on this. It reads the page with lxml (through
``response.selector``, built on first use), so finding a form by XPath works and a page without
forms costs nothing until a spider asks. The rules are the browser's and Scrapy's: hidden inputs
(a CSRF token) are sent as they are, text inputs and textareas with their value, a select with its
selected options (the first option when none is selected), checkboxes and radio buttons only when
checked (``on`` without a value), the first submit button (or the one ``clickdata`` names) with
its value; reset, image and plain buttons, disabled controls and nameless ones are not sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lxml.html import HtmlElement

    from ._message import Response

__all__ = ["FormValues", "Pairs", "form_submission", "pairs_of"]

FormValues = Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None
Pairs = list[tuple[Any, Any]]

_NOT_SENT = frozenset({"submit", "image", "reset", "button"})
_CLICKABLE_INPUTS = frozenset({"submit", "image"})
_WHITESPACE = " \t\n\r\f"


def pairs_of(formdata: FormValues) -> Pairs:
    """``formdata`` as (name, value) pairs, in order; a value may be a list of values."""
    if not formdata:
        return []
    try:
        items = formdata.items() if isinstance(formdata, Mapping) else formdata
        return [(key, value) for key, value in items]
    except (TypeError, ValueError):
        raise ValueError(
            f"formdata should be a dict or iterable of (name, value) tuples, not {formdata!r:.80}"
        ) from None


def form_submission(
    response: Response,
    *,
    formname: str | None,
    formid: str | None,
    formnumber: int,
    formxpath: str | None,
    formcss: str | None,
    formdata: FormValues,
    clickdata: Mapping[str, str | int] | None,
    dont_click: bool,
) -> tuple[str | None, str, Pairs]:
    """The form's ``action`` (``None`` when it has none), its method and the pairs to send."""
    form = _find_form(response, formname, formid, formnumber, formxpath, formcss)
    given = pairs_of(formdata)
    overridden = {key for key, _ in given}
    pairs: Pairs = [(k, v) for k, v in _fields(form) if k not in overridden]
    if not dont_click:
        clicked = _clicked(form, clickdata)
        if clicked is not None and clicked[0] not in overridden:
            pairs.append(clicked)
    # A None value in formdata drops that field from what the form would send.
    pairs.extend((key, value) for key, value in given if value is not None)
    action = form.get("action")
    action = action.strip(_WHITESPACE) if action is not None else None
    method = (form.get("method") or "GET").upper()
    return action or None, method, pairs


def _find_form(
    response: Response,
    formname: str | None,
    formid: str | None,
    formnumber: int,
    formxpath: str | None,
    formcss: str | None,
) -> HtmlElement:
    root = response.selector.root
    forms = root.xpath("//form")
    if not forms:
        raise ValueError(f"No <form> element found in {response.url}")
    for attribute, wanted in (("name", formname), ("id", formid)):
        if wanted is not None:
            named = root.xpath(f"//form[@{attribute}=$wanted]", wanted=wanted)
            if named:
                return named[0]
    if formcss is not None or formxpath is not None:
        if formcss is not None:
            from parsel.csstranslator import HTMLTranslator

            query, shown = HTMLTranslator().css_to_xpath(formcss), f"formcss {formcss!r}"
        else:
            query, shown = str(formxpath), f"formxpath {formxpath}"
        found = root.xpath(query)
        # The query may name an element inside the form (its submit button): the form holds it.
        element = found[0] if found and hasattr(found[0], "getparent") else None
        while element is not None:
            if element.tag == "form":
                return element
            element = element.getparent()
        raise ValueError(f"No <form> element found with {shown} in {response.url}")
    try:
        return forms[formnumber]
    except IndexError:
        raise IndexError(
            f"Form number {formnumber} not found in {response.url} (it has {len(forms)})"
        ) from None


def _fields(form: HtmlElement) -> Iterable[tuple[str, str]]:
    for control in form.iter("input", "select", "textarea"):
        name = control.get("name")
        if not name or control.get("disabled") is not None:
            continue
        if control.tag == "textarea":
            yield name, control.text or ""
        elif control.tag == "select":
            yield from ((name, value) for value in _selected(control))
        else:
            kind = (control.get("type") or "text").lower()
            if kind in _NOT_SENT:
                continue
            if kind in ("checkbox", "radio"):
                if control.get("checked") is not None:
                    yield name, control.get("value") or "on"
                continue
            yield name, control.get("value") or ""


def _option_value(option: HtmlElement) -> str:
    value = option.get("value")
    if value is not None:
        return str(value)
    return " ".join(option.text_content().split())


def _selected(select: HtmlElement) -> list[str]:
    options = [o for o in select.iter("option")]
    chosen = [o for o in options if o.get("selected") is not None]
    if select.get("multiple") is not None:
        return [_option_value(o) for o in chosen]
    if chosen:
        return [_option_value(chosen[-1])]  # with several marked, the last one is selected
    enabled = [o for o in options if o.get("disabled") is None]
    return [_option_value(enabled[0])] if enabled else []


def _is_clickable(element: HtmlElement) -> bool:
    kind = (element.get("type") or "").lower()
    if element.tag == "input":
        return kind in _CLICKABLE_INPUTS
    return element.tag == "button" and kind in ("", "submit")


def _clicked(form: HtmlElement, clickdata: Mapping[str, str | int] | None) -> tuple[str, str] | None:
    """The button the submission clicks: the first submit button, or the one ``clickdata`` names.

    ``clickdata`` matches attributes (``{"name": "go", "value": "Save"}``), or ``nr``: the
    position among the form's input, select and textarea elements, as Scrapy counts it.
    """
    if clickdata is None:
        for element in form.iter("input", "button"):
            if _is_clickable(element):
                name = element.get("name")
                return (name, element.get("value") or "") if name else None
        return None
    nr = clickdata.get("nr")
    if isinstance(nr, int):
        controls = list(form.iter("input", "select", "textarea"))
        if 0 <= nr < len(controls):
            element = controls[nr]
            return element.get("name"), element.get("value") or ""
    conditions = "".join(f"[@{key}=$v{i}]" for i, key in enumerate(clickdata))
    values = {f"v{i}": str(value) for i, value in enumerate(clickdata.values())}
    matches = form.xpath(f".//*{conditions}", **values)
    if len(matches) > 1:
        raise ValueError(
            f"Multiple elements found ({matches!r}) matching the criteria in clickdata: {clickdata!r}"
        )
    if not matches:
        raise ValueError(f"No clickable element matching clickdata: {clickdata!r}")
    return matches[0].get("name"), matches[0].get("value") or ""
