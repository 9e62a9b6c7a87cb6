"""The product's errors are one family: each is a `MedallionError` and still a `ValueError` or `RuntimeError`, and
the CLI describes any of them by its own exit code and line."""

from pathlib import Path

import pytest

from medallion_platform import errors
from medallion_platform.cli.errors import describe

FAMILY = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]


def test_every_product_error_keeps_value_error_or_runtime_error_as_a_second_base():
    assert len(FAMILY) >= 11
    for cls in FAMILY:
        if cls is not errors.MedallionError:
            assert issubclass(cls, errors.MedallionError) and issubclass(cls, ValueError | RuntimeError), cls


def test_the_modules_that_raise_them_hand_out_the_same_classes():
    from medallion_platform.catalog import CatalogError
    from medallion_platform.contracts import ContractError
    from medallion_platform.ingestion.aws.batch import ChecksumMismatch, CopyFailed
    from medallion_platform.ingestion.aws.events import PoisonMessage
    from medallion_platform.ingestion.aws.producer import ProducerError
    from medallion_platform.ingestion.landing import UnreadableObject
    from medallion_platform.settings import ConfigError

    assert {CatalogError, ContractError, ChecksumMismatch, CopyFailed, PoisonMessage, ProducerError} <= set(FAMILY)
    assert {UnreadableObject, ConfigError} <= set(FAMILY)


@pytest.mark.parametrize(
    ("error", "wanted"),
    [
        (errors.ConfigError("MEDALLION_X is not a number"), (2, "MEDALLION_X is not a number")),
        (
            errors.ContractError(Path("orders.yaml"), [("columns.0.type", "unknown type"), ("owner", "missing")]),
            (2, "orders.yaml: invalid data contract: columns.0.type: unknown type; owner: missing"),
        ),
        (errors.CopyFailed("job 7 failed: 2 of 3 objects\nreport: s3://x/y"), (1, "job 7 failed: 2 of 3 objects")),
        (
            errors.NotInstalled("`bench` comes with the development tools"),
            (2, "`bench` comes with the development tools"),
        ),
        (ValueError("something else"), (1, "ValueError: something else (run with --debug for the traceback)")),
    ],
)
def test_the_cli_describes_an_error_by_its_family_in_one_line(error, wanted):
    assert describe(error) == wanted
