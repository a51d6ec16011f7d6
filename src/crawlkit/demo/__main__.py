import sys

from ._site import main

sys.exit(main())
