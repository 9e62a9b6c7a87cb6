"""Refined zone: business tables, one module per table, written in the PySpark DataFrame API."""

from medallion_platform.zones.refined.customer_lifetime import TABLE as CUSTOMER_LIFETIME
from medallion_platform.zones.refined.daily_revenue import TABLE as DAILY_REVENUE
from medallion_platform.zones.refined.model import RefinedTable
from medallion_platform.zones.refined.product_performance import TABLE as PRODUCT_PERFORMANCE
from medallion_platform.zones.refined.segment_revenue import TABLE as SEGMENT_REVENUE

__all__ = ["REFINED_TABLES", "RefinedTable"]

REFINED_TABLES: tuple[RefinedTable, ...] = (
    DAILY_REVENUE,
    CUSTOMER_LIFETIME,
    PRODUCT_PERFORMANCE,
    SEGMENT_REVENUE,
)
