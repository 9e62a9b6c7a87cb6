"""The Dagster wiring over the domain: resources, the IO manager, assets, checks, sensors, schedules, partitions."""
