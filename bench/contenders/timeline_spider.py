"""The benchmark spider, with the time each page was parsed: what ``bench/chain.py`` reads.

Every product item gains ``t`` (``time.time()`` in the parser worker), and each listing page
yields one more item, ``{"listing": URL, "t": ...}``. Not a contender: its output fails the
benchmark's validation on purpose.
"""

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crawlkit_spider import ShopSpider  # the spider next to this file

from crawlkit.http import Response


class TimelineSpider(ShopSpider):
    name = "bench-shop-timeline"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"listing": response.url, "t": time.time()}
        yield from super().parse(response)

    def parse_product(self, response: Response) -> Iterator[Any]:
        for out in super().parse_product(response):
            if isinstance(out, dict):
                out["t"] = time.time()
            yield out
