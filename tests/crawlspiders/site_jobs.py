"""Every job offer of the ``jobs`` site mirror.

Run by tests/integration/test_real_sites.py with ``crawlkit runspider``; ``-a base=http://127.0.0.1:PORT``
points it at the mirror served on loopback. Only crawlkit and the standard library are imported,
as in a user's own spider file.
"""

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class JobsSpider(Spider):
    name = "site_jobs"
    allowed_domains = ["127.0.0.1"]
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base + "/")

    def parse(self, response: Response) -> Iterator[Any]:
        # A listing page (the home page, a category, a page of either): its offers, then every
        # other link.
        yield from response.follow_all(css="a.job-link", callback=self.parse_job)
        yield from response.follow_all(css="a[href]")

    def parse_job(self, response: Response) -> Iterator[Any]:
        info = {
            dt.text(strip=True): dd
            for dt, dd in zip(response.css("dl.row dt"), response.css("dl.row dd"), strict=True)
        }

        def text(css: str) -> str:
            return response.css_first(css).text(strip=True)

        yield {
            "url": response.url,
            "title": text("h1"),
            "published": text("p.job-date").removeprefix("Published on").strip(),
            "category": text("a.job-category-link"),
            "company": text("span.job-company"),
            "work_type": text("span.job-work-type"),
            "location": text("span.job-location"),
            "salary": info["Salary range"].text(strip=True),
            "experience": info["Required experience"].text(strip=True),
            "benefits": [li.text(strip=True) for li in info["Benefits"].css("li")],
            "phone": info["Contact"].css("span.phone")[0].text(strip=True),
        }
