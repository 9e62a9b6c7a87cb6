"""Data contracts: one YAML file per source dataset, and the typed model that reads them."""

from medallion_platform.contracts.loader import CONTRACTS_DIR, ContractError, load_contract, load_contracts
from medallion_platform.contracts.model import METADATA_COLUMNS, Column, Contract

__all__ = [
    "CONTRACTS_DIR",
    "METADATA_COLUMNS",
    "Column",
    "Contract",
    "ContractError",
    "load_contract",
    "load_contracts",
]
