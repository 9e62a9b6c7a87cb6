"""`python -m medallion_platform.cli ...`: the same as `medallion ...` (tests and trials start it this way)."""

import sys

from medallion_platform.cli.main import main

sys.exit(main())
