"""Finding and importing spider classes, in the main process and in parser workers alike.

A spider is identified by a :class:`SpiderRef` (module name, class name, the ``sys.path`` entries
needed to import it), never by a pickled class or instance: each parser worker imports the module
itself, so module-level state and dataclass item types resolve the same way in every process.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SpiderError
from ._spider import Spider

__all__ = ["SpiderRef", "discover_spiders", "import_object", "load_spider_file", "ref_for_class"]


@dataclass(frozen=True, slots=True)
class SpiderRef:
    """Where a spider class lives: enough for any process to import it."""

    module: str
    qualname: str
    sys_path: tuple[str, ...] = ()
    main_file: str | None = field(default=None)  # set when the class lives in __main__

    def load(self) -> type[Spider]:
        for entry in reversed(self.sys_path):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        if self.module == "__main__" and self.main_file:
            module = sys.modules.get("__mp_main__") or _import_main(self.main_file)
        else:
            try:
                module = importlib.import_module(self.module)
            except Exception as exc:
                raise SpiderError(f"cannot import spider module {self.module!r}: {exc}") from exc
        obj: object = module
        for part in self.qualname.split("."):
            obj = getattr(obj, part, None)
        if not (inspect.isclass(obj) and issubclass(obj, Spider)):
            raise SpiderError(f"{self.module}:{self.qualname} is not a Spider subclass")
        return obj


def _import_main(path: str) -> object:
    # The user's script defined the spider and called crawl(): load it here as __mp_main__,
    # as multiprocessing does, so that it does not run its own `if __name__ == "__main__"` block.
    spec = importlib.util.spec_from_file_location("__mp_main__", path)
    if spec is None or spec.loader is None:
        raise SpiderError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__mp_main__"] = module
    sys.modules["__main__"] = module
    spec.loader.exec_module(module)
    return module


def ref_for_class(cls: type[Spider]) -> SpiderRef:
    """The ref of a class already imported in this process."""
    if "<locals>" in cls.__qualname__:
        raise SpiderError(
            f"spider {cls.__qualname__} is defined inside a function; define it at module level "
            "so that parser worker processes can import it"
        )
    main_file = None
    if cls.__module__ == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if main_file is None:
            raise SpiderError(
                "spiders defined in an interactive session cannot run in parser workers; "
                "put the spider in a module, or set parse_workers=0"
            )
    paths = tuple(p for p in sys.path if p)
    return SpiderRef(cls.__module__, cls.__qualname__, paths, main_file)


def _spiders_in(module_name: str) -> list[type[Spider]]:
    module = sys.modules[module_name]
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Spider)
        and obj is not Spider
        and obj.__module__ == module_name
    ]


def load_spider_file(path: Path) -> type[Spider]:
    """Import a spider file (``crawlkit runspider``) and return the one spider class it defines."""
    path = path.resolve()
    if not path.is_file():
        raise SpiderError(f"no such spider file: {path}")
    if path.suffix != ".py":
        raise SpiderError(f"a spider file must be a .py file: {path}")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path):
        raise SpiderError(f"spider file {path.name} has the same name as module {name!r}; rename it")
    try:
        importlib.import_module(name)
    except Exception as exc:
        raise SpiderError(f"cannot import {path}:\n{traceback.format_exc(limit=-3)}") from exc
    found = _spiders_in(name)
    if not found:
        raise SpiderError(f"{path} defines no Spider subclass")
    if len(found) > 1:
        names = ", ".join(sorted(c.__name__ for c in found))
        raise SpiderError(f"{path} defines several spiders ({names}); keep one per file")
    return found[0]


@dataclass(slots=True)
class Discovery:
    """The spiders found in a folder, and the modules that failed to import."""

    spiders: dict[str, type[Spider]]
    broken: dict[str, str]


def discover_spiders(folder: Path) -> Discovery:
    """Import every module in a spiders folder and index the spiders by ``name``."""
    found = Discovery({}, {})
    if not folder.is_dir():
        return found
    folder = folder.resolve()
    package = folder.name
    if not package.isidentifier():
        raise SpiderError(f"spiders folder name {package!r} is not a valid Python identifier")
    root = str(folder.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"{package}.{path.stem}"
        try:
            importlib.import_module(module_name)
        except Exception:
            found.broken[str(path)] = traceback.format_exc(limit=-3)
            continue
        for cls in _spiders_in(module_name):
            if not cls.name:
                continue
            if cls.name in found.spiders:
                other = found.spiders[cls.name]
                raise SpiderError(
                    f"two spiders are named {cls.name!r}: {other.__module__}.{other.__qualname__} "
                    f"and {cls.__module__}.{cls.__qualname__}"
                )
            found.spiders[cls.name] = cls
    return found


def import_object(path: str, kind: str) -> Any:
    """What ``package.module:Name`` (or ``package.module.Name``) names, for a setting that lists
    user code (pipelines, middlewares, extensions); ``kind`` names it in errors."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"{kind} {path!r} must be an import path like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"cannot import {kind} module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{kind} {path!r}: module {module_name!r} has no {attr!r}") from None
