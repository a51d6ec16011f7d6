"""A parser pool's worker configuration for tests that drive ``ParserPool`` directly."""

from __future__ import annotations

from typing import Any

from crawlkit import Spider
from crawlkit.parsing._worker import WorkerConfig
from crawlkit.spider._loader import ref_for_class


def pool_config(spider: type[Spider], **spider_kwargs: Any) -> WorkerConfig:
    """Items as JSON lines, 1 MiB bodies at most, warnings only."""
    return WorkerConfig(
        spider=ref_for_class(spider),
        spider_kwargs=spider_kwargs,
        serialize_items=True,
        max_response_size=1 << 20,
        log_level="WARNING",
    )
