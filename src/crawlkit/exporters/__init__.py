"""Exporters: JSON lines (the default), a JSON array and CSV; gzip; output split into parts.

``make_exporter`` picks one from the settings and the output file's name. Plain JSONL in one file
keeps the lean :class:`~JsonLinesExporter`; everything else goes through
:class:`FeedExporter`. Several outputs (the ``feeds`` setting) are written as one :class:`FeedSet`.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from ._base import Exporter, Mode, OutputSpec, is_stream, output_key, output_spec
from ._feed import FeedExporter
from ._feeds import Feed, FeedSet, exporter_for, feeds_from_settings, output_exporter
from ._jsonl import JsonLinesExporter
from ._pipelines import ItemPipeline, PipelineChain, load_pipelines
from ._sink import os_cause

__all__ = [
    "Exporter",
    "Feed",
    "FeedExporter",
    "FeedSet",
    "ItemPipeline",
    "JsonLinesExporter",
    "Mode",
    "OutputSpec",
    "PipelineChain",
    "exporter_for",
    "feeds_from_settings",
    "is_stream",
    "load_pipelines",
    "make_exporter",
    "os_cause",
    "output_exporter",
    "output_key",
    "render_files_dir",
    "spec_for",
]


def spec_for(output: Path, settings: Settings) -> OutputSpec:
    """The output's format, compression and splitting, from the settings and its name."""
    return output_spec(
        output,
        settings.output_format,
        settings.output_gzip,
        settings.max_items_per_file,
        settings.csv_fields,
    )


def render_files_dir(output: Path) -> Path:
    """Where a crawl writes the screenshots and PDFs of rendered pages: a folder beside the output.

    ``out/products.jsonl`` gives ``out/products-render/``; a stream's (``/dev/stdout``) is
    ``render/`` in the working directory.
    """
    if is_stream(output):
        return Path("render")
    stem = output.name.split(".", 1)[0] or output.name
    return output.with_name(f"{stem}-render")


def make_exporter(output: Path, mode: Mode, settings: Settings) -> Exporter:
    """The exporter for ``output``: see the module docs."""
    return output_exporter(spec_for(output, settings), mode)
