"""The price bound that "cheap" / "expensive" read from the catalog is a price a shopper can
be shown: a quantile of the catalog's prices, in cents."""

from decimal import Decimal

import pytest

from search.vectorstore.keyword import price_quantile

pytestmark = pytest.mark.django_db


def test_quantile_between_two_prices_is_rounded_to_cents(make_product):
    make_product("Low", category="socks", price="10.00")
    make_product("High", category="socks", price="10.01")
    make_product("Other", category="hats", price="99.00")
    # percentile_cont interpolates: the median of 10.00 and 10.01 is 10.005.
    median = price_quantile(category_slugs=["socks"], fraction=0.5)
    assert median in (Decimal("10.00"), Decimal("10.01"))
    assert median.as_tuple().exponent >= -2
    # The category is the filter: the hat is not in it, and without it the hat counts.
    assert price_quantile(category_slugs=["socks"], fraction=1.0) == Decimal("10.01")
    assert price_quantile(category_slugs=[], fraction=1.0) == Decimal("99.00")
    assert price_quantile(category_slugs=["none-such"], fraction=0.5) is None
