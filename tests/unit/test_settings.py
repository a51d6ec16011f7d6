"""crawlkit.settings: defaults, layering, type checking and the reference table."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from crawlkit import __version__
from crawlkit.errors import ConfigError
from crawlkit.settings import (
    DEFAULT_RETRY_HTTP_CODES,
    Settings,
    env_settings,
    load_settings,
    read_pyproject,
    settings_reference,
)
from crawlkit.settings._load import _parse_text


def write_pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


# -- defaults -------------------------------------------------------------------------------------


def test_defaults_are_valid() -> None:
    s = Settings()
    assert s.concurrency == 16
    assert s.concurrency_per_host == 8
    assert s.download_delay == 0.0
    assert s.parse_workers == -1
    assert s.depth_limit == 0
    assert s.max_retries == 3
    assert s.retry_http_codes == list(DEFAULT_RETRY_HTTP_CODES)
    assert s.max_response_size == 32 * 1024 * 1024
    assert s.user_agent == f"crawlkit/{__version__}"
    assert "Accept" in s.default_headers
    assert s.pipelines == []
    assert s.log_level == "INFO"


def test_load_settings_without_layers_gives_defaults() -> None:
    assert load_settings(environ={}) == Settings()


def test_default_containers_are_not_shared() -> None:
    a, b = Settings(), Settings()
    assert a.retry_http_codes is not b.retry_http_codes
    assert a.default_headers is not b.default_headers


def test_settings_are_frozen_and_replace_validates() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.concurrency = 3  # type: ignore[misc]
    assert s.replace(concurrency=3).concurrency == 3
    with pytest.raises(ConfigError):
        s.replace(concurrency=0)


def test_effective_parse_workers() -> None:
    assert Settings(parse_workers=0).effective_parse_workers == 0
    assert Settings(parse_workers=3).effective_parse_workers == 3
    assert Settings(parse_workers=-1).effective_parse_workers >= 1


# -- layering -------------------------------------------------------------------------------------


def test_layers_in_order(tmp_path: Path) -> None:
    pyproject = write_pyproject(
        tmp_path,
        """
[project]
name = "x"

[tool.crawlkit]
concurrency = 4
download_delay = 0.25
depth_limit = 3
user_agent = "from-toml"
max_retries = 1
""",
    )
    s = load_settings(
        pyproject=pyproject,
        spider_settings={"concurrency": 5, "depth_limit": 6, "max_retries": 2},
        environ={"CRAWLKIT_CONCURRENCY": "7", "CRAWLKIT_MAX_RETRIES": "4"},
        overrides={"concurrency": "9"},
    )
    assert s.concurrency == 9  # overrides win
    assert s.max_retries == 4  # env beats the spider
    assert s.depth_limit == 6  # the spider beats pyproject
    assert s.download_delay == 0.25  # pyproject beats defaults
    assert s.user_agent == "from-toml"
    assert s.concurrency_per_host == 8  # untouched default


def test_each_layer_alone(tmp_path: Path) -> None:
    pyproject = write_pyproject(tmp_path, "[tool.crawlkit]\nconcurrency = 4\n")
    assert load_settings(pyproject=pyproject, environ={}).concurrency == 4
    assert load_settings(spider_settings={"concurrency": 5}, environ={}).concurrency == 5
    assert load_settings(environ={"CRAWLKIT_CONCURRENCY": "6"}).concurrency == 6
    assert load_settings(environ={}, overrides={"concurrency": 7}).concurrency == 7


def test_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRAWLKIT_DOWNLOAD_DELAY", "1.5")
    assert load_settings().download_delay == 1.5


def test_env_settings_selects_crawlkit_variables() -> None:
    env = {"CRAWLKIT_CONCURRENCY": "3", "CRAWLKIT_": "x", "crawlkit_depth_limit": "2", "PATH": "/bin"}
    assert env_settings(env) == {"concurrency": "3"}


def test_missing_or_empty_pyproject(tmp_path: Path) -> None:
    assert read_pyproject(tmp_path / "absent.toml") == {}
    assert load_settings(pyproject=tmp_path / "absent.toml", environ={}) == Settings()
    other = write_pyproject(tmp_path, '[project]\nname = "x"\n')
    assert read_pyproject(other) == {}


def test_invalid_toml(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.crawlkit\nconcurrency = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(pyproject=path, environ={})


def test_crawlkit_table_must_be_a_table(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool]\ncrawlkit = 3\n")
    with pytest.raises(ConfigError, match="must be a table"):
        read_pyproject(path)


def test_dashed_and_uppercase_keys(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.crawlkit]\ndownload-delay = 2\nconcurrency-per-host = 3\n")
    s = load_settings(pyproject=path, environ={}, overrides={"Depth_Limit": 4})
    assert (s.download_delay, s.concurrency_per_host, s.depth_limit) == (2.0, 3, 4)
    assert isinstance(s.download_delay, float)


# -- unknown keys -----------------------------------------------------------------------------------


def test_unknown_key_from_pyproject_names_key_source_and_suggestion(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.crawlkit]\nconcurency = 4\n")
    with pytest.raises(ConfigError) as info:
        load_settings(pyproject=path, environ={})
    message = str(info.value)
    assert "'concurency'" in message
    assert str(path) in message
    assert "did you mean 'concurrency'?" in message


def test_unknown_key_from_env_is_a_warning_and_the_rest_applies(caplog: pytest.LogCaptureFixture) -> None:
    # Other tools share the prefix (a wrapper script's CRAWLKIT_BIN): that must not stop a crawl.
    env = {"CRAWLKIT_DOWNLOAD_DELAI": "1", "CRAWLKIT_BIN": "/opt/crawlkit/bin", "CRAWLKIT_CONCURRENCY": "3"}
    with caplog.at_level(logging.WARNING, logger="crawlkit.settings"):
        settings = load_settings(environ=env)
    assert settings == Settings(concurrency=3)
    message = caplog.text
    assert "CRAWLKIT_DOWNLOAD_DELAI" in message and "did you mean 'download_delay'?" in message
    assert "CRAWLKIT_BIN" in message


def test_unknown_key_from_spider_and_overrides() -> None:
    with pytest.raises(ConfigError, match=r"'user_agnet'.*custom_settings.*'user_agent'"):
        load_settings(spider_settings={"user_agnet": "x"}, environ={})
    with pytest.raises(ConfigError, match=r"'max_retry'.*command line.*'max_retries'"):
        load_settings(environ={}, overrides={"max_retry": 1})


def test_unknown_key_without_close_match() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, overrides={"zzzzzz": 1})
    assert "'zzzzzz'" in str(info.value)
    assert "did you mean" not in str(info.value)


# -- wrong types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "words"),
    [
        ("CONCURRENCY", "abc", "must be an integer"),
        ("CONCURRENCY", "2.5", "must be an integer"),
        ("DOWNLOAD_DELAY", "soon", "must be a number"),
        ("RETRY_HTTP_CODES", "500,abc", "comma-separated list of integers"),
        ("RETRY_HTTP_CODES", '["500"]', "must be a list of int"),
        ("PIPELINES", "[1, 2]", "must be a list of str"),
        ("DEFAULT_HEADERS", "Accept=text/html", "must be given as JSON"),
        ("DEFAULT_HEADERS", "{not json", "not valid JSON"),
        ("DEFAULT_HEADERS", '["a"]', "must be a table/dict"),
    ],
)
def test_wrong_types_from_env_text(key: str, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={f"CRAWLKIT_{key}": text})
    message = str(info.value)
    assert f"'{key.lower()}'" in message
    assert "(from the environment)" in message
    assert words in message


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ("concurrency = 2.5", "concurrency", "must be an integer"),
        ("concurrency = true", "concurrency", "must be an integer"),
        ("download_delay = false", "download_delay", "must be a number"),
        ('download_delay = "soon"', "download_delay", "must be a number"),
        ("user_agent = 5", "user_agent", "must be a string"),
        ("retry_http_codes = 500", "retry_http_codes", "must be a list"),
        ("retry_http_codes = [500, true]", "retry_http_codes", "must be a list of int"),
        ("retry_http_codes = [500.0]", "retry_http_codes", "must be a list of int"),
        ("pipelines = [1]", "pipelines", "must be a list of str"),
        ("default_headers = [1]", "default_headers", "must be a table/dict"),
    ],
)
def test_wrong_types_from_toml(tmp_path: Path, line: str, key: str, words: str) -> None:
    path = write_pyproject(tmp_path, f"[tool.crawlkit]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(pyproject=path, environ={})
    message = str(info.value)
    assert f"'{key}'" in message
    assert str(path) in message
    assert words in message


@pytest.mark.parametrize("line", ['concurrency = "8"', 'retry_http_codes = "500, 503"'], ids=["int", "list"])
def test_toml_string_for_a_non_string_setting_is_rejected(tmp_path: Path, line: str) -> None:
    # TOML values are typed: a string where an integer or a list belongs is the wrong type. The
    # docstring of settings._coerce says text is converted only "for text from the environment or
    # the CLI", but it converts strings from every layer, so these load without an error.
    path = write_pyproject(tmp_path, f"[tool.crawlkit]\n{line}\n")
    with pytest.raises(ConfigError):
        load_settings(pyproject=path, environ={})


def test_header_values_must_be_strings() -> None:
    # default_headers is dict[str, str]; "a value of the wrong type is a ConfigError", but only
    # the outer type is checked, so an integer header value is accepted and fails later.
    with pytest.raises(ConfigError, match="default_headers"):
        load_settings(environ={}, overrides={"default_headers": {"Accept": 5}})
    with pytest.raises(ConfigError, match="default_headers"):
        load_settings(environ={"CRAWLKIT_DEFAULT_HEADERS": '{"X-N": 1}'})


@pytest.mark.parametrize("key", ["download_delay", "connect_timeout"])
def test_nan_is_not_a_valid_duration(key: str) -> None:
    # "nan" parses as a float and passes every "< 0" / "<= 0" check, so a NaN delay or timeout
    # is accepted (a NaN download_delay silently turns the per-host delay off).
    with pytest.raises(ConfigError, match=key):
        load_settings(environ={f"CRAWLKIT_{key.upper()}": "nan"})


# -- range checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"concurrency": -1}, "'concurrency' must be at least 1, got -1"),
        ({"concurrency": 0}, "'concurrency' must be at least 1"),
        ({"concurrency_per_host": 0}, "'concurrency_per_host' must be at least 1"),
        ({"parse_batch_size": 0}, "'parse_batch_size' must be at least 1"),
        ({"download_delay": -0.5}, "'download_delay' must not be negative"),
        ({"depth_limit": -1}, "'depth_limit' must not be negative"),
        ({"max_retries": -1}, "'max_retries' must not be negative"),
        ({"max_response_size": -1}, "'max_response_size' must not be negative"),
        ({"connect_timeout": 0}, "'connect_timeout' must be greater than 0"),
        ({"download_timeout": -1.0}, "'download_timeout' must be greater than 0"),
        ({"parse_workers": -2}, "'parse_workers' must be -1"),
        ({"log_level": "LOUD"}, "'log_level' must be DEBUG, INFO, WARNING or ERROR"),
        ({"retry_http_codes": [503, 99]}, "holds 99"),
        ({"retry_http_codes": [600]}, "holds 600"),
    ],
)
def test_range_checks(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, overrides=changes)
    assert words in str(info.value)


def test_negative_concurrency_from_env() -> None:
    with pytest.raises(ConfigError, match="'concurrency' must be at least 1"):
        load_settings(environ={"CRAWLKIT_CONCURRENCY": "-4"})


def test_boundary_values_are_accepted() -> None:
    s = load_settings(
        environ={},
        overrides={
            "concurrency": 1,
            "download_delay": 0,
            "depth_limit": 0,
            "max_retries": 0,
            "parse_workers": 0,
            "max_response_size": 0,
            "log_level": "debug",
            "retry_http_codes": [],
        },
    )
    assert s.concurrency == 1
    assert s.log_level == "debug"
    assert s.retry_http_codes == []


# -- parsing text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_parse_bool(text: str, expected: bool) -> None:
    assert _parse_text("flag", text, bool, "setting 'flag'") is expected


def test_parse_bool_rejects_other_words() -> None:
    with pytest.raises(ConfigError, match="true or false"):
        _parse_text("flag", "maybe", bool, "setting 'flag'")


def test_parse_numbers_from_env() -> None:
    s = load_settings(
        environ={
            "CRAWLKIT_CONCURRENCY": " 12 ",
            "CRAWLKIT_DOWNLOAD_DELAY": "1e-3",
            "CRAWLKIT_READ_TIMEOUT": "5",
            "CRAWLKIT_MAX_RESPONSE_SIZE": "1048576",
        }
    )
    assert s.concurrency == 12
    assert s.download_delay == 0.001
    assert s.read_timeout == 5.0 and isinstance(s.read_timeout, float)
    assert s.max_response_size == 1048576


def test_parse_lists_from_env() -> None:
    s = load_settings(
        environ={
            "CRAWLKIT_RETRY_HTTP_CODES": "500, 503,,",
            "CRAWLKIT_PIPELINES": "pkg.mod:First, pkg.mod:Second",
        }
    )
    assert s.retry_http_codes == [500, 503]
    assert s.pipelines == ["pkg.mod:First", "pkg.mod:Second"]
    s = load_settings(environ={"CRAWLKIT_RETRY_HTTP_CODES": "[429, 503]", "CRAWLKIT_PIPELINES": '["a:B"]'})
    assert s.retry_http_codes == [429, 503]
    assert s.pipelines == ["a:B"]
    assert load_settings(environ={"CRAWLKIT_PIPELINES": ""}).pipelines == []


def test_parse_dict_from_env_and_toml(tmp_path: Path) -> None:
    s = load_settings(environ={"CRAWLKIT_DEFAULT_HEADERS": '{"X-A": "1", "Accept": "*/*"}'})
    assert s.default_headers == {"X-A": "1", "Accept": "*/*"}
    path = write_pyproject(tmp_path, '[tool.crawlkit.default_headers]\nX-B = "2"\n')
    assert load_settings(pyproject=path, environ={}).default_headers == {"X-B": "2"}


def test_toml_native_types(tmp_path: Path) -> None:
    path = write_pyproject(
        tmp_path,
        """[tool.crawlkit]
retry_http_codes = [500, 503]
pipelines = ["a:B"]
download_delay = 1
log_level = "WARNING"
""",
    )
    s = load_settings(pyproject=path, environ={})
    assert s.retry_http_codes == [500, 503]
    assert s.pipelines == ["a:B"]
    assert s.download_delay == 1.0 and isinstance(s.download_delay, float)
    assert s.log_level == "WARNING"


def test_string_settings_are_not_parsed() -> None:
    s = load_settings(environ={"CRAWLKIT_USER_AGENT": "[not json]", "CRAWLKIT_SPIDERS_DIR": "123"})
    assert s.user_agent == "[not json]"
    assert s.spiders_dir == "123"


def test_tuple_is_accepted_as_list() -> None:
    s = load_settings(environ={}, spider_settings={"retry_http_codes": (500,)})
    assert s.retry_http_codes == [500]


# -- the reference ----------------------------------------------------------------------------------


def test_settings_reference_lists_every_field() -> None:
    ref = settings_reference()
    lines = ref.splitlines()
    assert lines[0] == "| setting | type | default | meaning |"
    assert len(lines) == 2 + len(Settings.field_names())
    for field in dataclasses.fields(Settings):
        row = next(line for line in lines if line.startswith(f"| `{field.name}` |"))
        assert field.metadata["doc"] in row
    assert "| `concurrency` | int | `16` |" in ref
    assert "| `download_delay` | float | `0.0` |" in ref
    assert "`[408,429,500,502,503,504,522,524]`" in ref
    assert f"`'crawlkit/{__version__}'`" in ref


def test_every_field_is_documented() -> None:
    for field in dataclasses.fields(Settings):
        assert field.metadata.get("doc"), field.name


def test_field_names() -> None:
    names = Settings.field_names()
    assert names[0] == "concurrency"
    assert len(names) == len(set(names)) == len(dataclasses.fields(Settings))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"browser_concurrency": 0}, "'browser_concurrency' must be at least 1"),
        ({"browser_context_pages": 0}, "'browser_context_pages' must be at least 1"),
        ({"render_timeout": 0}, "'render_timeout' must be greater than 0"),
        ({"browser_max_memory_mb": -1}, "'browser_max_memory_mb' must not be negative"),
        ({"browser_block_resources": ["image", "pictures"]}, r"unknown resource types \['pictures'\]"),
    ],
)
def test_browser_settings_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**changes)  # type: ignore[arg-type]


def test_browser_settings_defaults_are_small_and_safe() -> None:
    s = Settings()
    assert s.browser_concurrency == 2
    assert set(s.browser_block_resources) == {"image", "font", "media"}
