"""``FormRequest``, ``FormRequest.from_response()``, ``JsonRequest``, ``Request.from_curl()``.

The ``from_response`` cases follow what Scrapy's users rely on (its own test suite's cases), and
where Scrapy and browsers part ways (no action, disabled fields), what browsers do.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from crawlkit import FormRequest, JsonRequest, Request, Response


def page(body: str | bytes, url: str = "http://example.com", charset: str = "utf-8") -> Response:
    data = body.encode(charset) if isinstance(body, str) else body
    return Response(url, 200, {"Content-Type": f"text/html; charset={charset}"}, data, Request(url))


def sent(req: Request, encoding: str = "utf-8") -> list[tuple[str, str]]:
    """The fields a request sends, in order, from its body (POST) or its query (GET)."""
    query = req.body if req.method == "POST" else urlsplit(req.url).query.encode()
    return parse_qsl(query.decode("ascii"), keep_blank_values=True, encoding=encoding)


def fields(req: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in sent(req):
        out.setdefault(key, []).append(value)
    return out


HIDDEN = """<form action="post.php" method="POST">
<input type="hidden" name="test" value="val1"><input type="hidden" name="test" value="val2">
<input type="hidden" name="test2" value="xxx"></form>"""


# FormRequest on its own ---------------------------------------------------------------------------


def test_formdata_posts_urlencoded_and_get_puts_it_in_the_query() -> None:
    post = FormRequest("http://www.example.com/a", formdata={"price": "£ 100", "one": "two"})
    assert post.method == "POST"
    assert post.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert post.body == b"price=%C2%A3+100&one=two"
    get = FormRequest("http://www.example.com/?a=0&b=1#frag", method="GET", formdata=[("a", "1"), ("a", "2")])
    assert get.url == "http://www.example.com/?a=1&a=2#frag"  # the form's query replaces the URL's
    assert get.body == b""
    assert FormRequest("http://www.example.com", formdata={}).method == "GET"
    multi = FormRequest("http://e.com", formdata={"colours": ["red", "blue"], "x": "1"})
    assert multi.body == b"colours=red&colours=blue&x=1"
    latin = FormRequest(
        "http://e.com", formdata={"price": "£ 100", "yen": "¥", "euro": "€"}, encoding="latin-1"
    )
    assert latin.body == b"price=%A3+100&yen=%A5&euro=%26%238364%3B"  # unencodable: as browsers send it
    given = FormRequest("http://e.com", formdata={"a": "1"}, headers={"content-type": "text/plain"})
    assert given.headers == {"content-type": "text/plain"}


# from_response: where and how --------------------------------------------------------------------


def test_from_response_post_sends_hidden_fields_and_formdata() -> None:
    r = page(HIDDEN, url="http://www.example.com/this/list.html")
    req = FormRequest.from_response(r, formdata={"one": ["two", "three"], "six": "seven"})
    assert type(req) is FormRequest
    assert req.method == "POST"
    assert req.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert req.url == "http://www.example.com/this/post.php"
    assert sent(req) == [
        ("test", "val1"),
        ("test", "val2"),
        ("test2", "xxx"),
        ("one", "two"),
        ("one", "three"),
        ("six", "seven"),
    ]


def test_from_response_get_puts_the_fields_in_the_query() -> None:
    r = page(
        HIDDEN.replace('method="POST"', 'method="GET"').replace("post.php", "get.php"),
        url="http://www.example.com/this/list.html",
    )
    req = FormRequest.from_response(r, formdata={"one": "two"})
    assert req.method == "GET"
    assert req.url.startswith("http://www.example.com/this/get.php?")
    assert fields(req) == {"test": ["val1", "val2"], "test2": ["xxx"], "one": ["two"]}


@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1"])
def test_from_response_encodes_in_the_pages_encoding(charset: str) -> None:
    r = page('<form method="post"><input type="hidden" name="test £" value="xxx µ"></form>', charset=charset)
    req = FormRequest.from_response(r)
    assert sent(req, encoding=charset) == [("test £", "xxx µ")]


def test_from_response_overrides_drops_and_repeats_fields() -> None:
    form = (
        '<form action="get.php" method="POST"><input type="hidden" name="one" value="1">'
        '<input type="hidden" name="two" value="3"></form>'
    )
    assert fields(FormRequest.from_response(page(form), formdata={"two": "2"})) == {
        "one": ["1"],
        "two": ["2"],
    }
    assert fields(FormRequest.from_response(page(form), formdata={"two": None})) == {"one": ["1"]}
    repeated = FormRequest.from_response(page(form), formdata=(("two", "2"), ("two", "4")))
    assert fields(repeated) == {"one": ["1"], "two": ["2", "4"]}
    empty = FormRequest.from_response(
        page("<form></form>"), method="GET", formdata=(("foo", "bar"), ("foo", "baz"))
    )
    assert urlsplit(empty.url).query == "foo=bar&foo=baz"


def test_from_response_extra_arguments_are_requests() -> None:
    req = FormRequest.from_response(
        page(HIDDEN), headers={"Accept-Encoding": "gzip"}, meta={"k": 1}, callback="after_login"
    )
    assert req.headers == {"Accept-Encoding": "gzip", "Content-Type": "application/x-www-form-urlencoded"}
    assert req.meta == {"k": 1}
    assert req.callback == "after_login"


def test_from_response_method_and_url() -> None:
    r = page('<html><body><form action="/app"></form></body></html>')
    assert FormRequest.from_response(r).method == "GET"
    assert FormRequest.from_response(r, method="post").method == "POST"
    assert FormRequest.from_response(r).url == "http://example.com/app"
    assert FormRequest.from_response(r, url="http://foo.bar/absolute").url == "http://foo.bar/absolute"
    assert FormRequest.from_response(r, url="/relative").url == "http://example.com/relative"
    for method, expected in [
        ("GET", "GET"),
        ("POST", "POST"),
        ("post", "POST"),
        ("UNKNOWN", "GET"),
        ("dialog", "GET"),
    ]:
        form = f'<form action="post.php" method="{method}"><input type="hidden" name="one" value="1"></form>'
        assert FormRequest.from_response(page(form)).method == expected


def test_from_response_action_resolution() -> None:
    base = page(
        '<html><head><base href=" http://b.com/"></head><body><form action="test_form"></form></body></html>',
        url="http://a.com/",
    )
    assert FormRequest.from_response(base).url == "http://b.com/test_form"
    spaces = page('<body><form action=" path\n"></form></body>')
    assert FormRequest.from_response(spaces).url == "http://example.com/path"
    # No action (or an empty one) submits to the page itself, as a browser does.
    for form in ("<form></form>", '<form action=""></form>'):
        assert (
            FormRequest.from_response(page(form, url="http://a.com/x/page?q=1")).url
            == "http://a.com/x/page?q=1"
        )


# from_response: which form ------------------------------------------------------------------------

TWO_FORMS = """<form name="form1" id="f1" action="post.php" method="POST">
<input type="hidden" name="one" value="1"></form>
<form name="form2" id="f2" action="post2.php" method="POST"><input type="hidden" name="two" value="2">
<input type="hidden" name="four" value="4"></form>"""


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ({}, {"one": ["1"]}),
        ({"formname": "form2"}, {"two": ["2"], "four": ["4"]}),
        ({"formname": "form3"}, {"one": ["1"]}),  # an unknown name falls back to formnumber
        ({"formid": "f2"}, {"two": ["2"], "four": ["4"]}),
        ({"formid": "f3"}, {"one": ["1"]}),
        ({"formname": "form3", "formid": "f2"}, {"two": ["2"], "four": ["4"]}),
        ({"formnumber": 1}, {"two": ["2"], "four": ["4"]}),
        ({"formxpath": "//form[@action='post.php']"}, {"one": ["1"]}),
        ({"formxpath": "//form/input[@name='four']"}, {"two": ["2"], "four": ["4"]}),  # an element inside
        ({"formcss": "form[action='post.php']"}, {"one": ["1"]}),
        ({"formcss": "input[name='four']"}, {"two": ["2"], "four": ["4"]}),
    ],
)
def test_from_response_picks_the_form(how: dict[str, Any], expected: dict[str, list[str]]) -> None:
    assert fields(FormRequest.from_response(page(TWO_FORMS), **how)) == expected


def test_from_response_says_why_no_form_was_found() -> None:
    with pytest.raises(ValueError, match=r"No <form> element found in http://example\.com"):
        FormRequest.from_response(page("<html></html>"))
    with pytest.raises(IndexError, match="Form number 2 not found"):
        FormRequest.from_response(page(TWO_FORMS), formnumber=2)
    with pytest.raises(IndexError):
        FormRequest.from_response(page(TWO_FORMS), formname="form3", formnumber=2)
    with pytest.raises(ValueError, match="No <form> element found with formxpath //form/input"):
        FormRequest.from_response(page(TWO_FORMS), formxpath="//form/input[@name='abc']")
    with pytest.raises(ValueError, match="No <form> element found with formcss"):
        FormRequest.from_response(page(TWO_FORMS), formcss="input[name='abc']")
    outside = page('<div id="out"><p>x</p></div><form><input name="a"></form>')
    with pytest.raises(ValueError, match="No <form> element found with"):
        FormRequest.from_response(outside, formxpath='//div[@id="out"]/p')
    unicode_name = page('<form name="\u044a"></form>')
    assert fields(FormRequest.from_response(unicode_name, formxpath="//form[@name='\u044a']")) == {}
    with pytest.raises(ValueError, match="\u03b1"):
        FormRequest.from_response(unicode_name, formxpath="//form[@name='\u03b1']")
    for bad in (123, ("a",)):
        with pytest.raises(ValueError, match="formdata should be a dict or iterable"):
            FormRequest.from_response(page(HIDDEN), formdata=bad)  # type: ignore[arg-type]


# from_response: which fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        pytest.param(
            """<select name="i1"><option value="i1v1">1</option>
            <option value="i1v2" selected>2</option></select>
            <select name="i2"><option value="i2v1">1</option><option value="i2v2">2</option></select>
            <select><option value="i3v1">1</option></select>
            <select name="i4" multiple><option value="i4v1">1</option><option value="i4v2" selected>2</option>
            <option value="i4v3" selected>3</option></select>
            <select name="i5" multiple><option value="i5v1">1</option></select>
            <select name="i6"></select><select name="i7"/></select>
            <select name="i8"><option>  Text  as value </option></select>""",
            {"i1": ["i1v2"], "i2": ["i2v1"], "i4": ["i4v2", "i4v3"], "i8": ["Text as value"]},
            id="select",
        ),
        pytest.param(
            """<input type="radio" name="i1" value="i1v1"><input type="radio" name="i1" value="iv2" checked>
            <input type="radio" name="i2" checked><input type="radio" name="i2">
            <input type="radio" name="i3" value="i3v1"><input type="radio" name="i3">
            <input type="radio" value="i4v1" checked><input type="radio">""",
            {"i1": ["iv2"], "i2": ["on"]},
            id="radio",
        ),
        pytest.param(
            """<input type="checkbox" name="i1" value="i1v1">
            <input type="CheckBox" name="i1" value="iv2" checked>
            <input type="checkbox" name="i2" checked><input type="checkbox" name="i2">
            <input type="checkbox" name="i3" value="i3v1"><input type="checkbox" value="i4v1">""",
            {"i1": ["iv2"], "i2": ["on"]},
            id="checkbox",
        ),
        pytest.param(
            """<input type="text" name="i1" value="i1v1"><input type="text" name="i2">
            <input type="text" value="i3v1"><input type="text"><input name="i4" value="i4v1">""",
            {"i1": ["i1v1"], "i2": [""], "i4": ["i4v1"]},
            id="text",
        ),
        pytest.param(
            """<input type="hidden" name="i1" value="i1v1"><input type="hidden" name="i2">
            <input type="hidden" value="i3v1"><input type="hidden">""",
            {"i1": ["i1v1"], "i2": [""]},
            id="hidden",
        ),
        pytest.param(
            """<textarea name="i1">i1v</textarea><textarea name="i2"></textarea><textarea>i4v</textarea>""",
            {"i1": ["i1v"], "i2": [""]},
            id="textarea",
        ),
        pytest.param(
            """<div><fieldset><input type="text" name="i1">
            <select name="i2"><option value="v1" selected></select>
            </fieldset><input type="radio" name="i3" value="i3v2" checked>
            <input type="checkbox" name="i4" value="i4v2" checked><textarea name="i5"></textarea>
            <input type="hidden" name="h1" value="h1v"></div><input type="hidden" name="h2" value="h2v">""",
            {
                "i1": [""],
                "i2": ["v1"],
                "i3": ["i3v2"],
                "i4": ["i4v2"],
                "i5": [""],
                "h1": ["h1v"],
                "h2": ["h2v"],
            },
            id="descendants",
        ),
        pytest.param(
            """<input type="hidden" name="i1" value="i1v"><input type="image" name="i2" src="x.jpg">
            <input type="reset" name="r"><input type="button" name="b" value="b">
            <input type="text" name="off" value="x" disabled>""",
            {"i1": ["i1v"]},
            id="not-sent",
        ),
    ],
)
def test_from_response_fields_as_a_browser_sends_them(form: str, expected: dict[str, list[str]]) -> None:
    req = FormRequest.from_response(page(f"<form>{form}</form>"), dont_click=True)
    assert fields(req) == expected


def test_from_response_on_broken_html() -> None:
    r = page(
        '<!DOCTYPE html><body></html><form><input type="text" name="foo" value="xxx"></form></body></html>'
    )
    assert fields(FormRequest.from_response(r, formdata={"bar": "buz"})) == {"foo": ["xxx"], "bar": ["buz"]}


# from_response: which button ----------------------------------------------------------------------

BUTTONS = """<form action="get.php" method="GET">
<input type="submit" name="clickable1" value="clicked1">
<input type="hidden" name="one" value="1"><input type="hidden" name="two" value="3">
<input type="submit" name="clickable2" value="clicked2"></form>"""


def test_from_response_clicks_the_first_submit_button() -> None:
    req = FormRequest.from_response(page(BUTTONS), formdata={"two": "2"})
    assert fields(req) == {"one": ["1"], "two": ["2"], "clickable1": ["clicked1"]}
    mixed_case = """<form><input type="SuBmIt" name="c1" value="v1"><input type="iMaGe" name="i1" src="x.jpg">
    <input type="submit" name="c2" value="v2"></form>"""
    assert fields(FormRequest.from_response(page(mixed_case))) == {"c1": ["v1"]}
    assert fields(FormRequest.from_response(page(BUTTONS), dont_click=True)) == {"one": ["1"], "two": ["3"]}


@pytest.mark.parametrize(
    ("button", "expected"),
    [
        ('<button type="submit" name="button1" value="submit1">Submit</button>', ["submit1"]),
        (
            '<button name="button1" value="submit1">Submit</button>',
            ["submit1"],
        ),  # a button submits by default
        ('<input type="submit" name="button1">', [""]),
        ('<button type="submit" name="button1">Submit</button>', [""]),
        ('<input id="image" name="button1" type="image" value="v" src="1.jpg">', ["v"]),
    ],
)
def test_from_response_submit_buttons(button: str, expected: list[str]) -> None:
    r = page(f'<form action="post.php" method="POST"><input type="hidden" name="t" value="v">{button}</form>')
    assert fields(FormRequest.from_response(r)) == {"t": ["v"], "button1": expected}


def test_from_response_clickdata_names_the_button() -> None:
    assert fields(FormRequest.from_response(page(BUTTONS), clickdata={"name": "clickable2"})) == {
        "one": ["1"],
        "two": ["3"],
        "clickable2": ["clicked2"],
    }
    same_name = """<form><input type="submit" name="clickable" value="clicked1">
    <input type="submit" name="clickable" value="clicked2"></form>"""
    req = FormRequest.from_response(page(same_name), clickdata={"name": "clickable", "value": "clicked2"})
    assert fields(req) == {"clickable": ["clicked2"]}
    by_index = (
        '<form><input type="submit" name="c1" value="v1"><input type="submit" name="c2" value="v2"></form>'
    )
    assert fields(FormRequest.from_response(page(by_index), clickdata={"nr": 1})) == {"c2": ["v2"]}
    unicode = (
        '<form><input type="submit" name="price in £" value="£ 1000">'
        '<input type="submit" name="in €" value="€"></form>'
    )
    assert fields(FormRequest.from_response(page(unicode), clickdata={"name": "price in £"})) == {
        "price in £": ["£ 1000"]
    }
    overridden = '<form><input type="submit" name="clickme" value="one"></form>'
    req = FormRequest.from_response(
        page(overridden), formdata={"clickme": "two"}, clickdata={"name": "clickme"}
    )
    assert fields(req) == {"clickme": ["two"]}
    two_forms = """<form name="form1"><input type="submit" name="clickable" value="clicked1">
    <input type="hidden" name="field1" value="value1"></form><form name="form2">
    <input type="submit" name="clickable" value="clicked2">
    <input type="hidden" name="field2" value="value2"></form>"""
    req = FormRequest.from_response(page(two_forms), formname="form2", clickdata={"name": "clickable"})
    assert fields(req) == {"clickable": ["clicked2"], "field2": ["value2"]}


def test_from_response_clickdata_that_matches_wrongly_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"Multiple elements found .* matching the criteria in clickdata"):
        FormRequest.from_response(page(BUTTONS), clickdata={"type": "submit"})
    with pytest.raises(ValueError, match="No clickable element matching clickdata:"):
        FormRequest.from_response(page(BUTTONS), clickdata={"nonexistent": "notme"})
    with pytest.raises(ValueError, match="No clickable element matching clickdata:"):
        FormRequest.from_response(
            page('<form><input type="submit" name="c" value="v"></form>'), clickdata={"nr": 1}
        )


# JSON ---------------------------------------------------------------------------------------------


def test_json_request_posts_json_and_gets_without_data() -> None:
    req = JsonRequest("http://api.test/items", data={"page": 2, "a": [1, "é"]})
    assert req.method == "POST"
    assert orjson.loads(req.body) == {"page": 2, "a": [1, "é"]}
    assert req.body.index(b'"a"') < req.body.index(b'"page"')  # sorted keys: one fingerprint per document
    assert req.headers == {
        "Accept": "application/json, text/javascript, */*; q=0.01",
        "Content-Type": "application/json",
    }
    get = JsonRequest("http://api.test/items")
    assert (get.method, get.body, get.headers) == (
        "GET",
        b"",
        {"Accept": "application/json, text/javascript, */*; q=0.01"},
    )
    put = JsonRequest("http://api.test/items/1", data={"x": 1}, method="PUT", headers={"Accept": "*/*"})
    assert put.method == "PUT" and put.headers == {"Accept": "*/*", "Content-Type": "application/json"}
    assert (
        JsonRequest("http://a.test", data={"b": 1, "a": 2}).fingerprint
        == JsonRequest("http://a.test", data={"a": 2, "b": 1}).fingerprint
    )


def test_response_json_and_its_error() -> None:
    ok = Response(
        "http://api.test/x",
        200,
        {"Content-Type": "application/json"},
        b'\xef\xbb\xbf{"a": [1]}',
        Request("http://api.test/x"),
    )
    assert ok.json() == {"a": [1]}
    assert ok.json() is ok.json()  # parsed once
    html = page("<html>Not found</html>", url="http://api.test/y")
    with pytest.raises(
        ValueError,
        match=r"http://api\.test/y is not JSON \(Content-Type text/html; charset=utf-8; "
        r"22 bytes starting '<html>",
    ):
        html.json()


# Stored and sent across processes -----------------------------------------------------------------


def test_form_and_json_requests_pickle_as_themselves() -> None:
    form = FormRequest(
        "http://e.com/login", callback="after", formdata={"user": "u", "csrf": "t"}, meta={"k": 1}
    )
    back = pickle.loads(pickle.dumps(form))
    assert type(back) is FormRequest
    assert (back.method, back.url, back.body, back.headers, back.callback, back.meta) == (
        "POST",
        "http://e.com/login",
        b"user=u&csrf=t",
        {"Content-Type": "application/x-www-form-urlencoded"},
        "after",
        {"k": 1},
    )
    assert back.fingerprint == form.fingerprint
    js = pickle.loads(pickle.dumps(JsonRequest("http://e.com/api", data={"a": 1})))
    assert type(js) is JsonRequest and js.body == b'{"a":1}' and js.method == "POST"
    moved = form.replace(url="http://e.com/login2")
    assert type(moved) is FormRequest and moved.body == form.body and moved.method == "POST"
    plain = Request("http://e.com/")
    assert len(plain.__reduce__()[1]) == 14  # a plain request's pickle is as it was


# curl ---------------------------------------------------------------------------------------------


def test_from_curl_reads_a_devtools_command() -> None:
    command = r"""curl 'https://api.example.com/v1/search?q=x' \
  -H 'accept: application/json' \
  -H 'content-type: application/json' \
  -H 'cookie: a=1; b=2' \
  -b 'c=3' \
  --data-raw '{"page":2}' \
  --compressed"""
    req = Request.from_curl(command, callback="parse_api")
    assert req.method == "POST"
    assert req.url == "https://api.example.com/v1/search?q=x"
    assert req.headers == {
        "accept": "application/json",
        "content-type": "application/json",
        "Cookie": "a=1; b=2; c=3",
    }
    assert req.body == b'{"page":2}'
    assert req.callback == "parse_api"
    put = Request.from_curl("curl -X PUT -d a=1 -d b=2 -u user:pass example.com/x")
    assert (put.method, put.url, put.body) == ("PUT", "http://example.com/x", b"a=1&b=2")
    assert put.headers == {"Authorization": "Basic dXNlcjpwYXNz"}
    assert Request.from_curl("curl https://e.com --data-binary $'a=1'").body == b"a=1"
    assert Request.from_curl("curl -XPOST https://e.com").method == "POST"
    assert type(FormRequest.from_curl("curl https://e.com -d x=1")) is FormRequest


def test_from_curl_warns_about_what_it_does_not_understand() -> None:
    with pytest.warns(UserWarning, match="--max-time"):
        req = Request.from_curl("curl --max-time https://e.com/")
    assert req.url == "https://e.com/"
    with pytest.raises(ValueError, match="--proxy"):
        Request.from_curl("curl --proxy https://e.com/", ignore_unknown_options=False)
    with pytest.raises(ValueError, match="not a curl command"):
        Request.from_curl("wget https://e.com/")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Request.from_curl("curl -s -L -k --compressed https://e.com/")
