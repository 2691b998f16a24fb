"""`python -m broadcaster.cli ...` is `loa ...`."""

import sys

from broadcaster.cli.main import main

sys.exit(main())
