"""`python -m medallion_platform.bench`: the same as `medallion bench`."""

import sys

from medallion_platform.bench.cli import main

sys.exit(main())
