"""Tests of the development tools (`medallion_devtools`), beside them; `pytest` collects them with the product's."""
