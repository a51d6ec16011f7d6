"""A parser worker process, as the ``ParserPool`` starts it: ``python -m crawlkit.parsing``."""

import sys

from ._worker import main

sys.exit(main())
