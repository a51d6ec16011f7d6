"""``crawlkit serve``: the dashboard, the JSON API of spiders and jobs, and the fetch API.

Crawls are started as ordinary ``crawlkit crawl`` processes and read back from their job folders,
so a server restart loses nothing. Secure by default: 127.0.0.1 unless a token is given, the
fetch API refuses private addresses at every hop, and no endpoint accepts code.
"""

from ._app import ServeConfig, is_loopback_host, make_app, run_server
from ._fetchoptions import BadOption, FetchOptions, choose_proxy, read_options
from ._fetchsessions import SessionBook, SessionsFull
from ._forwarder import VettedForwarder
from ._netguard import AddressRefused, NetGuard, VettingResolver, address_problem

__all__ = [
    "AddressRefused",
    "BadOption",
    "FetchOptions",
    "NetGuard",
    "ServeConfig",
    "SessionBook",
    "SessionsFull",
    "VettedForwarder",
    "VettingResolver",
    "address_problem",
    "choose_proxy",
    "is_loopback_host",
    "make_app",
    "read_options",
    "run_server",
]
