"""The public API: ``crawlkit.__all__`` is sorted, complete, importable and documented."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

import crawlkit

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = ["crawlkit", "crawlkit.testing"]


def docs_text() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(p.read_text() for p in pages)


def module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_unique(name: str) -> None:
    names = module(name).__all__
    assert names == sorted(names), "keep __all__ sorted"
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_matches_the_namespace(name: str) -> None:
    mod = module(name)
    for public in mod.__all__:
        assert getattr(mod, public) is not None, public  # importable (crawl() lazily)

    # Every class or function that the module (for the package: its submodules) defines and holds
    # under a public name is exported: nothing public is reachable only by accident.
    def ours(value: object) -> bool:
        owner = getattr(value, "__module__", "") or ""
        return owner.startswith(name + ".") if hasattr(mod, "__path__") else owner == name

    defined_here = {
        key
        for key, value in vars(mod).items()
        if not key.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value)) and ours(value)
    }
    assert defined_here <= set(mod.__all__), sorted(defined_here - set(mod.__all__))


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring_and_is_in_the_docs(name: str) -> None:
    mod = module(name)
    text = docs_text()
    for public in mod.__all__:
        if public == "__version__":
            continue
        obj = getattr(mod, public)
        doc = obj.__doc__ if inspect.isclass(obj) else inspect.getdoc(obj)
        assert doc and doc.strip(), f"{name}.{public} has no docstring"
        assert re.search(rf"`[^`]*\b{re.escape(public)}\b[^`]*`", text), (
            f"{name}.{public} is not mentioned in README.md or docs/*.md"
        )


def test_the_version_is_a_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", crawlkit.__version__)
