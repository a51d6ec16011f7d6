"""The generated documentation matches the code: run ``scripts/gen-docs`` after changing either."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crawlkit.cli._docgen import cli_reference, generated_files, replace_block
from crawlkit.cli._main import build_parser
from crawlkit.settings import Settings, settings_reference

ROOT = Path(__file__).resolve().parents[2]
FILES = generated_files(ROOT)


@pytest.mark.parametrize("path", sorted(FILES), ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_docs_are_up_to_date(path: Path) -> None:
    assert path.read_text() == FILES[path], f"{path.relative_to(ROOT)} is stale: run scripts/gen-docs"


def test_every_setting_is_in_the_settings_page_and_the_readme() -> None:
    reference = settings_reference()
    for name in Settings.field_names():
        assert f"| `{name}` |" in reference
    for page in (ROOT / "docs" / "settings.md", ROOT / "README.md"):
        assert reference in page.read_text()


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, command in action.choices.items():
            assert f"### `crawlkit {name}" in text
            options = (o for a in command._actions for o in a.option_strings if o not in ("-h", "--help"))
            for option in options:
                assert f"`{option}`" in text, f"crawlkit {name} {option}"
    assert cli_reference(parser) in text


def test_replace_block_keeps_what_surrounds_it() -> None:
    text = "a\n<!-- x: note -->\nold\n<!-- /x -->\nb\n"
    assert replace_block(text, "x", "new") == "a\n<!-- x: note -->\nnew\n<!-- /x -->\nb\n"
    with pytest.raises(ValueError, match="no <!-- y --> block"):
        replace_block(text, "y", "new")


def test_docs_link_to_files_that_exist() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+?)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
