"""The three example flows of the product (JSON files beside this module), used by the demo seed and
the end-to-end tests. The order-status flow calls an orders API whose base URL is filled in."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("inbound_lead", "order_status", "fire_and_forget")
ORDERS_API_PLACEHOLDER = "__ORDERS_API__"


def load(name: str, orders_api: str = "https://orders.example.com/api") -> dict:
    """`{"name", "description", "flow"}` of one example."""
    text = (HERE / f"{name}.json").read_text()
    return json.loads(text.replace(ORDERS_API_PLACEHOLDER, orders_api.rstrip("/")))
