"""Bulk catalog import from CSV or JSON Lines.

Each row is validated and its images fetched and decoded before anything is written; a bad
row is reported (line number + reason) and the good ones still import. Products are created
through ``shop.services.product_create``, so indexing is requested after commit like any
other write. Every product carries an idempotency key in ``Product.external_id`` (the row's
``sku``, else a hash of title + category + image references): a row whose key exists is
skipped, so re-running an interrupted import only adds what is missing.
"""
