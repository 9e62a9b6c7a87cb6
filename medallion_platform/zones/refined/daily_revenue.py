"""daily_revenue: per event date x country x product category x currency."""

from typing import Any

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.zones.refined.model import AMOUNT, MONEY, PLACED, SIGNED_AMOUNT, RefinedTable, Tally, amount

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
        return F.sum(F.when(status == F.lit(when), value).otherwise(F.lit(0)))

    gross, cancelled, refunded = (total(F.col("amount"), when) for when in ("placed", "cancelled", "refunded"))
    return events.groupBy("event_date", "country", "category", "currency").agg(
        F.countDistinct(F.when(status == F.lit("placed"), F.col("order_id"))).alias("orders"),
        total(F.col("quantity"), "placed").cast("bigint").alias("units"),
        gross.cast("decimal(18,2)").alias("gross_revenue"),
        cancelled.cast("decimal(18,2)").alias("cancelled_amount"),
        refunded.cast("decimal(18,2)").alias("refunded_amount"),
        (gross - cancelled - refunded).cast("decimal(18,2)").alias("net_revenue"),
    )


MEASURES = ("orders", "units", "gross_revenue", "cancelled_amount", "refunded_amount", "net_revenue")
KEY = ("event_date", "country", "category", "currency")


def combine(engine: Engine, stored: Frame, partial: Frame, **master_data: Frame) -> Frame:
    """Folds the figures of a date's new events (`partial`, from `build`) into its stored rows: every
    measure is a sum, and `orders` a distinct count the refresh folds only when the new events repeat no
    order already counted that date (`counted_once`), so the result equals a rebuild of the date.
    Country and category are in the key, resolved from the same master data on both sides."""
    F = engine.F
    both = stored.select(*KEY, *MEASURES).union(partial.select(*KEY, *MEASURES))
    return both.groupBy(*KEY).agg(
        F.sum("orders").cast("bigint").alias("orders"),
        F.sum("units").cast("bigint").alias("units"),
        *[F.sum(m).cast("decimal(18,2)").alias(m) for m in MEASURES[2:]],
    )


COLUMNS = {
    "event_date": "Day the events happened (UTC), the partition",
    "country": "Customer's current CRM country (`unknown` if the CRM does not know the customer yet)",
    "category": "Product's current ERP category (`unknown` if the ERP does not know the product yet)",
    "currency": "ISO 4217 currency of the amounts",
    "orders": "Distinct orders placed",
    "units": "Units placed",
    "gross_revenue": "Sum of quantity x unit price of placed events",
    "cancelled_amount": "Sum of quantity x unit price of cancelled events",
    "refunded_amount": "Sum of quantity x unit price of refunded events",
    "net_revenue": "gross_revenue - cancelled_amount - refunded_amount (negative when cancellations outweigh sales)",
}

TABLE = RefinedTable(
    name="daily_revenue",
    description=(build.__doc__ or "daily_revenue").split("\n")[0],
    owner="team:commerce-data",
    inputs=("order_events", "customers", "products"),
    schema=SCHEMA,
    build=build,
    key=KEY,
    columns=COLUMNS,
    non_negative=("orders", "units", "gross_revenue", "cancelled_amount", "refunded_amount"),
    tallies=(
        Tally("gross_revenue", "sum(gross_revenue)", f"sum({AMOUNT}) FILTER (WHERE {PLACED})"),
        Tally("net_revenue", "sum(net_revenue)", f"sum({SIGNED_AMOUNT})"),
        Tally("units", "sum(units)", f"sum(quantity) FILTER (WHERE {PLACED})"),
        Tally(
            "dates_and_currencies", "count(DISTINCT (event_date, currency))", "count(DISTINCT (event_date, currency))"
        ),
    ),
    combine=combine,
    counted_once=("status", "order_id"),
)
