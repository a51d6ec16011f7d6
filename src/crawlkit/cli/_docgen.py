"""The generated parts of the documentation, built from the code so that they cannot drift.

``scripts/gen-docs`` writes them; ``tests/unit/test_docs.py`` fails when a file differs from what
this module generates. Generated blocks sit between ``<!-- NAME`` and ``<!-- /NAME -->`` markers.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..settings import settings_reference

__all__ = ["cli_reference", "generated_files", "replace_block", "settings_page"]

SETTINGS_INTRO = """\
# Settings

Every setting, its type, its default and what it does. This page is generated from the
`Settings` object (`scripts/gen-docs`); `tests/unit/test_docs.py` keeps it true.

Settings come in layers, lowest first: these defaults < `[tool.crawlkit]` in `pyproject.toml` <
the spider's `custom_settings` < `CRAWLKIT_<NAME>` environment variables < `-s NAME=VALUE` on the
command line. An unknown name or a value of the wrong type stops the crawl before it starts, with a
message that names the setting and where the value came from (exit code 2). The one exception is
an unknown `CRAWLKIT_` variable in the environment (a wrapper script's `CRAWLKIT_BIN`): other
tools share the prefix, so it is logged as a warning and ignored.

```toml
# pyproject.toml
[tool.crawlkit]
concurrency = 32
download_delay = 0.25
user_agent = "mybot/1.0 (+https://example.com/bot)"
```

On the command line and in the environment, lists and tables are written as JSON
(`-s 'retry_http_codes=[500,503]'`) or, for a list, comma-separated (`-s retry_http_codes=500,503`).

"""


def settings_page() -> str:
    """The whole of ``docs/settings.md``."""
    return (
        SETTINGS_INTRO + "<!-- settings-table -->\n" + settings_reference() + "\n<!-- /settings-table -->\n"
    )


def _usage_name(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{s}`" for s in action.option_strings)
        if action.nargs == 0:
            return names
        metavar = action.metavar or (
            "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
        )
        return f"{names} `{metavar}`"
    return f"`{action.metavar or action.dest.upper()}`"


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """Every subcommand of ``crawlkit`` with its arguments, as Markdown."""
    if parser is None:
        from ._main import build_parser

        parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    out: list[str] = []
    for name, command in sub.choices.items():
        positionals = [a for a in command._actions if not a.option_strings]
        usage = " ".join(a.metavar or a.dest.upper() for a in positionals)
        out.append(f"### `crawlkit {name}{' ' + usage if usage else ''}`\n")
        out.append(f"{helps.get(name, '')[:1].upper()}{helps.get(name, '')[1:]}.\n")
        rows = [a for a in command._actions if not isinstance(a, argparse._HelpAction)]
        if rows:
            out.append("| argument | meaning |")
            out.append("| --- | --- |")
            for action in rows:
                text = action.help or ("one of the listed values" if action.choices else "")
                cells = (_usage_name(action), text)
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between ``<!-- name ...-->`` and ``<!-- /name -->`` set to ``body``."""
    pattern = re.compile(rf"(<!-- {re.escape(name)}[^>]*-->\n)(.*?)(<!-- /{re.escape(name)} -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {name} --> block found")
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text, count=1)


def generated_files(root: Path) -> dict[Path, str]:
    """Each generated file under the repository ``root`` and the content it must have."""
    readme = root / "README.md"
    cli = root / "docs" / "cli.md"
    return {
        root / "docs" / "settings.md": settings_page(),
        readme: replace_block(readme.read_text(), "settings-table", settings_reference()),
        cli: replace_block(cli.read_text(), "cli-reference", cli_reference()),
    }
