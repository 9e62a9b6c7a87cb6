"""daily_revenue: per event date x country x product category x currency."""

from typing import Any

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.zones.refined.base import MONEY, RefinedTable, amount

SCHEMA = pa.schema(
    [
        ("event_date", pa.date32()),
        ("country", pa.string()),
        ("category", pa.string()),
        ("currency", pa.string()),
        ("orders", pa.int64()),
        ("units", pa.int64()),
        ("gross_revenue", MONEY),
        ("cancelled_amount", MONEY),
        ("refunded_amount", MONEY),
        ("net_revenue", MONEY),
    ]
)


def build(engine: Engine, order_events: Frame, customers: Frame, products: Frame) -> Frame:
    """Orders and units placed, gross revenue, and cancelled and refunded amounts, by event date.

    Country is the customer's current CRM country and category the product's current ERP category;
    events for customers or products the master data does not know yet count under `unknown`.
    """
    F = engine.F
    status = F.col("status")
    events = (
        order_events.join(customers.select("customer_id", "country"), on="customer_id", how="left")
        .join(products.select("product_id", "category"), on="product_id", how="left")
        .select(
            "event_date",
            F.coalesce(F.col("country"), F.lit("unknown")).alias("country"),
            F.coalesce(F.col("category"), F.lit("unknown")).alias("category"),
            "currency",
            "status",
            "order_id",
            "quantity",
            amount(F).alias("amount"),
        )
    )

    def total(value: Any, when: str) -> Any:
        return F.coalesce(F.sum(F.when(status == F.lit(when), value)), F.lit(0))

    gross, cancelled, refunded = (total(F.col("amount"), when) for when in ("placed", "cancelled", "refunded"))
    return events.groupBy("event_date", "country", "category", "currency").agg(
        F.countDistinct(F.when(status == F.lit("placed"), F.col("order_id"))).alias("orders"),
        total(F.col("quantity"), "placed").cast("bigint").alias("units"),
        gross.cast("decimal(18,2)").alias("gross_revenue"),
        cancelled.cast("decimal(18,2)").alias("cancelled_amount"),
        refunded.cast("decimal(18,2)").alias("refunded_amount"),
        (gross - cancelled - refunded).cast("decimal(18,2)").alias("net_revenue"),
    )


TABLE = RefinedTable(
    name="daily_revenue",
    description=(build.__doc__ or "daily_revenue").split("\n")[0],
    owner="team:commerce-data",
    inputs=("order_events", "customers", "products"),
    schema=SCHEMA,
    build=build,
)
