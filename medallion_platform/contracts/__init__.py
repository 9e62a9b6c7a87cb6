"""Data contracts: one YAML file per source dataset, and the typed model that reads them."""

from medallion_platform.contracts.loader import (
    CONTRACTS_DIR,
    CONTRACTS_DIR_VARIABLE,
    ContractError,
    contracts_dir,
    load_contract,
    load_contracts,
)
from medallion_platform.contracts.model import METADATA_COLUMNS, Column, Contract

__all__ = [
    "CONTRACTS_DIR",
    "CONTRACTS_DIR_VARIABLE",
    "METADATA_COLUMNS",
    "Column",
    "Contract",
    "ContractError",
    "contracts_dir",
    "load_contract",
    "load_contracts",
]
