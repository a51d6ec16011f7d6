"""The local test website that crawlkit's integration tests crawl (see ``testsite.app``)."""
