"""The `medallion` command (`medallion = "medallion_platform.cli:main"`).

- `main.py`: the lake's commands (demo, generate, materialize, ui, sql, catalog, maintain), the parser, `main`;
- `aws.py`: `ingest stream` and `ingest batch`;
- `plugins.py`: the development tools' commands (`local-aws`, `local-databricks`, `bench`, `chaos`), read from
  the `medallion.commands` entry-point group, or a one-line install hint when they are not installed;
- `parser.py` (the argument parser, a leaf), `errors.py` (failures as one line), `progress.py` (phases).
"""

from medallion_platform.cli.main import build_parser, main
from medallion_platform.cli.parser import HelpFormatter, Parser

__all__ = ["HelpFormatter", "Parser", "build_parser", "main"]
