"""`python -m medallion_devtools.bench`: the same as `medallion bench`."""

import sys

from medallion_devtools.bench.cli import main

sys.exit(main())
