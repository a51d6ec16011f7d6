"""Exporters: JSON lines (the default), a JSON array and CSV; gzip; output split into parts.

``make_exporter`` picks one from the settings and the output file's name. Plain JSONL in one file
keeps the lean :class:`~JsonLinesExporter`; everything else goes through
:class:`FeedExporter`.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from ._base import Exporter, Mode, OutputSpec, is_stream, output_spec
from ._feed import FeedExporter
from ._jsonl import JsonLinesExporter
from ._pipelines import ItemPipeline, PipelineChain, load_pipelines
from ._sink import os_cause

__all__ = [
    "Exporter",
    "FeedExporter",
    "ItemPipeline",
    "JsonLinesExporter",
    "Mode",
    "OutputSpec",
    "PipelineChain",
    "is_stream",
    "load_pipelines",
    "make_exporter",
    "os_cause",
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
    spec = spec_for(output, settings)
    if spec.format == "jsonl" and not spec.gzip and not spec.max_items_per_file:
        return JsonLinesExporter(output, mode)
    return FeedExporter(spec, mode)
