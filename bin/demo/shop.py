"""A small example service for `kiln demo`: a fake shop that parses orders,
prices them and renders receipts, forever, so the flame graph has a shape.
Stdlib only; runs on CPython 3.9 and later."""
import json
import random
import time


class Catalog:
    def __init__(self):
        self.prices = {"sku-%d" % i: round(random.uniform(1, 100), 2) for i in range(500)}

    def price(self, sku):
        return self.prices[sku]


def parse_order(raw):
    return json.loads(raw)


def apply_discounts(total, items):
    for _ in range(40):
        total = total * 0.999 + len(items) * 0.001
    return total


def price_order(catalog, order):
    total = sum(catalog.price(item["sku"]) * item["qty"] for item in order["items"])
    return apply_discounts(total, order["items"])


def render_receipt(order, total):
    lines = ["%s x%d" % (item["sku"], item["qty"]) for item in order["items"]]
    return "\n".join(lines) + "\nTOTAL %.2f" % total


def handle(catalog, raw):
    order = parse_order(raw)
    total = price_order(catalog, order)
    return render_receipt(order, total)


def main():
    catalog = Catalog()
    skus = list(catalog.prices)
    while True:
        order = {"items": [{"sku": random.choice(skus), "qty": random.randint(1, 5)} for _ in range(30)]}
        raw = json.dumps(order)
        started = time.monotonic()
        while time.monotonic() - started < 0.05:
            handle(catalog, raw)
        time.sleep(0.01)


if __name__ == "__main__":
    main()
