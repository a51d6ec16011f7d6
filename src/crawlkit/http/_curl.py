"""``Request.from_curl()``: a request pasted from a browser's devtools ("Copy as cURL").

Understood: the URL, ``-X``/``--request``, ``-H``/``--header``, ``-b``/``--cookie`` (name=value
pairs; a cookie file is not read), ``-d``/``--data``/``--data-raw``/``--data-binary``/
``--data-ascii`` (repeated ones joined with ``&``, as curl does; ``@file`` is not read) and
``-u``/``--user``. ``--compressed`` and output-only flags (``-s``, ``-v``, ``-i``, ``-L``, ``-k``)
are ignored: crawlkit always decompresses and follows redirects by its own settings. Anything
else is ignored with a warning that names it, or refused with ``ignore_unknown_options=False``.
"""

from __future__ import annotations

import base64
import shlex
import warnings
from typing import Any

__all__ = ["curl_to_request_fields"]

_WITH_VALUE = {
    "-X": "method",
    "--request": "method",
    "-H": "header",
    "--header": "header",
    "-b": "cookie",
    "--cookie": "cookie",
    "-d": "data",
    "--data": "data",
    "--data-raw": "data",
    "--data-binary": "data",
    "--data-ascii": "data",
    "-u": "user",
    "--user": "user",
    "--url": "url",
}
_IGNORED = frozenset(
    {
        "--compressed",
        "-s",
        "--silent",
        "-v",
        "--verbose",
        "-i",
        "--include",
        "-L",
        "--location",
        "-k",
        "--insecure",
        "-#",
        "--progress-bar",
        "-g",
        "--globoff",
        "-S",
        "--show-error",
    }
)


def _split(command: str) -> list[str]:
    # Devtools copy multi-line commands with "\\" line continuations; shlex reads them as is.
    words = shlex.split(command.replace("\\\r\n", " ").replace("\\\n", " "))
    if not words or words[0] != "curl":
        raise ValueError(f"not a curl command: {command[:60]!r} (it should start with 'curl')")
    return words[1:]


def curl_to_request_fields(command: str, ignore_unknown_options: bool = True) -> dict[str, Any]:
    """``url``, ``method``, ``headers`` and ``body`` for the request that ``command`` sends."""
    words = _split(command)
    url: str | None = None
    method: str | None = None
    headers: dict[str, str] = {}
    cookies: list[str] = []
    data: list[str] = []
    unknown: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in _WITH_VALUE or (not eq and len(word) > 2 and word[:2] in _WITH_VALUE):
            if name in _WITH_VALUE:
                key = _WITH_VALUE[name]
                if eq:
                    value = inline
                elif i < len(words):
                    value, i = words[i], i + 1
                else:
                    raise ValueError(f"curl option {word} needs a value")
            else:  # -XPOST, -HAccept:...: a short option glued to its value
                key, value = _WITH_VALUE[word[:2]], word[2:]
            if key == "method":
                method = value.upper()
            elif key == "header":
                header, _, header_value = value.partition(":")
                if header.strip().lower() == "cookie":
                    cookies.append(header_value.strip())
                else:
                    headers[header.strip()] = header_value.strip()
            elif key == "cookie":
                if "=" in value:
                    cookies.append(value.strip())
                else:
                    unknown.append(f"{word} {value} (a cookie file)")
            elif key == "data":
                # bash's $'...' quoting (devtools use it for bodies with quotes) leaves a '$'.
                data.append(value.removeprefix("$"))
            elif key == "user":
                token = base64.b64encode(value.encode()).decode("ascii")
                headers["Authorization"] = f"Basic {token}"
            else:
                url = value
        elif word in _IGNORED:
            continue
        elif word.startswith("-") and len(word) > 1:
            unknown.append(word)
        elif url is None:
            url = word
        else:
            unknown.append(word)
    if url is None:
        raise ValueError("the curl command has no URL")
    if unknown:
        message = f"curl options not understood, ignored: {', '.join(unknown)}"
        if not ignore_unknown_options:
            raise ValueError(message)
        warnings.warn(message, stacklevel=3)
    if "://" not in url:
        url = "http://" + url  # curl's default scheme
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    body = "&".join(data)
    return {
        "url": url,
        "method": method or ("POST" if data else "GET"),
        "headers": headers or None,
        "body": body,
    }
