"""The API shop's spider with its middleware in ``custom_settings``, alone in its file for ``runspider``."""

from __future__ import annotations

from typing import Any, ClassVar

from crawlspiders.hooks_spiders import ApiShopSpider


class ApiShopCrawl(ApiShopSpider):
    name = "api_shop"
    custom_settings: ClassVar[dict[str, Any]] = {
        "middlewares": ["crawlspiders.hooks_spiders:ApiKeyMiddleware"]
    }
