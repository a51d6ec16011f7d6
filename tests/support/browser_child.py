"""A crawl-like process for the orphan test: it starts a browser and renders a page (argv[1]).

Then it prints one JSON line (its browser's processes, the profile folder, the launcher's
folder) and waits, to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from crawlkit.fetch import BrowserConfig, BrowserFetcher


def profile_of(pids: list[int]) -> str:
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode().split("\0")
        except OSError:  # a helper that came and went
            continue
        for arg in args:
            if arg.startswith("--user-data-dir="):
                return arg.split("=", 1)[1]
    return ""


async def main(url: str) -> None:
    fetcher = BrowserFetcher(BrowserConfig(concurrency=1))
    await fetcher.render(url)
    await fetcher.launcher.scan()
    pids = fetcher.pids()
    profile = profile_of(pids)
    folder = str(fetcher.launcher._dir)
    print(json.dumps({"pids": pids, "profile": profile, "folder": folder}), flush=True)
    # Still rendering when it is killed: a render that hangs on its script.
    await fetcher.render(url.replace("/product/1", "/hang"))


asyncio.run(main(sys.argv[1]))
