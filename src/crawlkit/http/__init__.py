"""The sans-I/O model of requests and pages: ``Request`` and ``Response``, and what they rest on.

``FormRequest`` and ``JsonRequest`` (forms and JSON bodies, ``Request.from_curl``), selectors
(``response.css()`` with parsel's vocabulary; ``xpath()`` through parsel on first use),
URLs (canonical form, fingerprints, the offsite filter), links (``follow_all`` filters), body
decoding (Content-Encoding with a cap, charsets as browsers read them), content types, one
redirect hop as browsers take it, and the plain-data ``RenderPlan`` of a page to render in a
browser (its steps: ``Click``, ``Fill``, ``Scroll``, ``WaitFor``, ``Evaluate``, ``Wait``).
Nothing here does I/O, so the event loop, the parser workers and the tests all use the same code.
"""

from ._challenges import PREFIX_BYTES, challenge_vendor
from ._content import is_binary_type
from ._encoding import accept_encoding, decode_body, decoded_prefix, detect_encoding
from ._failure import Failure
from ._links import IGNORED_EXTENSIONS, LinkFilter
from ._message import Request, Response, _rebuild_request
from ._redirects import REDIRECT_STATUSES, Hop, SchemeRedirect, next_hop
from ._render_plan import Click, Evaluate, Fill, RenderPlan, Scroll, Wait, WaitFor
from ._render_plan import Step as RenderStep
from ._requests import FormRequest, JsonRequest
from ._selectors import Node, SelectorList
from ._urls import (
    MAX_URL_LENGTH,
    OffsiteFilter,
    canonicalize_url,
    fingerprint,
    host_of,
    is_http_url,
    origin_of,
    resolve,
    wire_url,
)

# Job directories and Redis crawls store requests pickled as ``crawlkit.http._rebuild_request``:
# new pickles name the same path, so jobs made before and after a move resume alike.
_rebuild_request.__module__ = __name__

__all__ = [
    "IGNORED_EXTENSIONS",
    "MAX_URL_LENGTH",
    "PREFIX_BYTES",
    "REDIRECT_STATUSES",
    "Click",
    "Evaluate",
    "Failure",
    "Fill",
    "FormRequest",
    "Hop",
    "JsonRequest",
    "LinkFilter",
    "Node",
    "OffsiteFilter",
    "RenderPlan",
    "RenderStep",
    "Request",
    "Response",
    "SchemeRedirect",
    "Scroll",
    "SelectorList",
    "Wait",
    "WaitFor",
    "accept_encoding",
    "canonicalize_url",
    "challenge_vendor",
    "decode_body",
    "decoded_prefix",
    "detect_encoding",
    "fingerprint",
    "host_of",
    "is_binary_type",
    "is_http_url",
    "next_hop",
    "origin_of",
    "resolve",
    "wire_url",
]
