"""The ``fetcher`` and ``impersonate`` settings, and the handshake a browser profile is given."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from crawlkit.errors import ConfigError
from crawlkit.fetch import HeaderProfile, target_for
from crawlkit.settings import Settings

needs_curl_cffi = pytest.mark.skipif(
    importlib.util.find_spec("curl_cffi") is None,
    reason="the impersonating fetcher needs crawlkit[impersonate] (curl_cffi)",
)


def profile(agent: str) -> HeaderProfile:
    return HeaderProfile("browser", (("User-Agent", agent), ("Accept", "*/*")))


WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"


@needs_curl_cffi
@pytest.mark.parametrize(
    ("agent", "target"),
    [
        (f"{WIN} {WEBKIT} Chrome/131.0.0.0 Safari/537.36", "chrome131"),
        (f"{WIN} {WEBKIT} Chrome/135.0.0.0 Safari/537.36", "chrome133a"),  # the newest not above
        (f"{WIN} {WEBKIT} Chrome/90.0.4430.93 Safari/537.36", "chrome99"),  # older than any: the oldest
        (f"{WIN} {WEBKIT} Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "chrome124"),  # Chromium
        (f"{WIN}; rv:136.0) Gecko/20100101 Firefox/136.0", "firefox135"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.3 Safari/605.1.15",
            "safari180",
        ),
    ],
)
def test_a_browser_profile_gets_the_nearest_handshake_of_its_family(agent: str, target: str) -> None:
    assert target_for(profile(agent), "chrome") == target


@needs_curl_cffi
def test_without_a_browser_profile_the_setting_chooses() -> None:
    assert target_for(None, "firefox") == "firefox"
    honest = HeaderProfile("crawlkit", (("User-Agent", "crawlkit/1.0"),))
    assert target_for(honest, "chrome131") == "chrome131"
    assert target_for(profile("Opera/9.80 (Windows NT 6.1) Presto/2.12.388"), "safari") == "safari"


@needs_curl_cffi
def test_the_settings_are_checked_with_clear_messages() -> None:
    assert Settings(fetcher="impersonate", impersonate="firefox135").impersonate == "firefox135"
    with pytest.raises(ConfigError, match="'fetcher' must be one of aiohttp, impersonate, got 'curl'"):
        Settings(fetcher="curl")
    with pytest.raises(ConfigError, match=r"curl_cffi target.*got 'netscape4'"):
        Settings(fetcher="impersonate", impersonate="netscape4")
    Settings(impersonate="netscape4")  # not checked while the aiohttp fetcher is used


def test_without_curl_cffi_the_error_says_what_to_install() -> None:
    hide = textwrap.dedent(
        """
        import importlib.machinery, sys
        # This interpreter, as if curl_cffi were not installed: the path finder no longer sees it.
        class NoCurl(importlib.machinery.PathFinder):
            @classmethod
            def find_spec(cls, name, path=None, target=None):
                if name.split(".")[0] == "curl_cffi":
                    return None
                return super().find_spec(name, path, target)
        sys.meta_path = [NoCurl if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
        from crawlkit.errors import ConfigError
        from crawlkit.settings import Settings
        try:
            Settings(fetcher="impersonate")
        except ConfigError as exc:
            print(exc)
        """
    )
    command = [sys.executable, "-c", hide]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "pip install 'crawlkit[impersonate]'" in done.stdout
