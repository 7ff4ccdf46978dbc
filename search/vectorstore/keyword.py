"""The keyword leg in PostgreSQL: product documents (``tsvector``), their full-text query,
and the catalog vocabulary for typo tolerance (``pg_trgm``).

A sibling of the pgvector store: same database, same filter rendering (``filters_sql``), so
both legs of a query see exactly the same catalog subset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from search.filters import CatalogFilters
from search.vectorstore.pgvector import filters_sql

# English stemming ("sneakers" ~ "sneaker", "dresses" ~ "dress"); one config for documents and
# queries, or the lexemes would not meet.
CONFIG = "english"
# At most this many query words reach the database: a 10,000-character query must not turn
# into a 2,000-clause tsquery.
MAX_GROUPS = 12

# Joined hyphenated words: PostgreSQL's parser splits "T-shirt" into "t-shirt", "t" and
# "shirt", so a query for "shirt" would match every T-shirt. Documents and queries both join
# them ("tshirt"), see ``normalise``.
_JOIN_SQL = r"regexp_replace({}, '(\w)-(\w)', '\1\2', 'g')"
_JOIN_RE = re.compile(r"(\w)-(\w)")


def normalise(text: str) -> str:
    """What a document's text goes through, for query words: lower case, hyphens joined."""
    return _JOIN_RE.sub(r"\1\2", text.lower())


def _doc_part(expr: str, weight: str) -> str:
    return f"setweight(to_tsvector('{CONFIG}', {_JOIN_SQL.format(expr)}), '{weight}')"


_DOCUMENT_SQL = " || ".join(
    [
        _doc_part("p.title", "A"),
        _doc_part("c.name", "B"),
        _doc_part("p.colour", "B"),
        _doc_part(
            "coalesce((SELECT string_agg(value, ' ') FROM jsonb_each_text(p.attributes)), '')",
            "C",
        ),
        _doc_part("p.description", "D"),
    ]
)
# The words a shopper is likely to type (not descriptions: their long tail would make "did
# you mean" suggest rare words).
_WORDS_SQL = f"""
    INSERT INTO search_catalogword (word)
    SELECT DISTINCT w FROM shop_product p JOIN shop_category c ON c.id = p.category_id,
        regexp_split_to_table(
            lower({_JOIN_SQL.format("p.title || ' ' || c.name || ' ' || p.colour")}),
            '[^[:alnum:]]+') AS w
    WHERE p.id = ANY(%s) AND length(w) BETWEEN 3 AND 100 AND w !~ '^[0-9]+$'
    ON CONFLICT (word) DO NOTHING
"""


def documents_refresh(product_ids: Iterable[int]) -> int:
    """Rewrite the documents (and vocabulary) of these products; one statement each.

    Stamped with the clock, not ``now()`` (the transaction's start): the product's own
    ``updated_at`` was set earlier in the same transaction, and the document must not look
    older than it to the sweep.
    """
    ids = sorted(set(product_ids))
    if not ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO search_productdocument (product_id, document, updated_at)
            SELECT p.id, {_DOCUMENT_SQL}, clock_timestamp()
            FROM shop_product p JOIN shop_category c ON c.id = p.category_id
            WHERE p.id = ANY(%s)
            ON CONFLICT (product_id) DO UPDATE
                SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at
            """,
            [ids],
        )
        written = cur.rowcount
        cur.execute(_WORDS_SQL, [ids])
    return written


def product_ids_stale(limit: int) -> list[int]:
    """Products without a document, or edited after it was written (the sweep's backstop for
    a write that bypassed the catalog services)."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT p.id FROM shop_product p
            LEFT JOIN search_productdocument d ON d.product_id = p.id
            WHERE d.product_id IS NULL OR d.updated_at < p.updated_at
            ORDER BY p.id LIMIT %s
            """,
            [limit],
        )
        return [row[0] for row in cur.fetchall()]


@dataclass(frozen=True)
class KeywordHit:
    product_id: int
    groups_matched: int
    rank: float


def _group_sql(alternatives: Sequence[str]) -> tuple[str, list[str]]:
    # plainto_tsquery takes any text safely (no tsquery syntax to inject); a phrase of
    # several words ANDs them ("ankle boot"), alternatives OR.
    sql = " || ".join(f"plainto_tsquery('{CONFIG}', %s)" for _ in alternatives)
    return f"({sql})", [normalise(a) for a in alternatives]


def keyword_search(
    *,
    groups: Sequence[Sequence[str]],
    filters: CatalogFilters,
    limit: int,
    exclude_product_ids: Sequence[int] = (),
) -> list[KeywordHit]:
    """Products matching any group (a query word with its synonyms), those matching more
    groups first, then by weighted ``ts_rank`` (title over category/colour over description),
    ties by id. Stop-word-only groups match nothing."""
    groups = [g for g in groups if g][:MAX_GROUPS]
    if not groups:
        return []
    rendered = [_group_sql(g) for g in groups]
    any_sql = " || ".join(sql for sql, _ in rendered)
    any_params = [p for _, params in rendered for p in params]
    matched_sql = " + ".join(f"(d.document @@ {sql})::int" for sql, _ in rendered)
    where, params = filters_sql(filters)
    if exclude_product_ids:
        where += " AND NOT (p.id = ANY(%s))"
        params.append(list(exclude_product_ids))
    sql = f"""
        WITH q AS (SELECT {any_sql} AS query)
        SELECT d.product_id, {matched_sql} AS matched, ts_rank(d.document, q.query) AS rank
        FROM search_productdocument d CROSS JOIN q
        JOIN shop_product p ON p.id = d.product_id
        WHERE d.document @@ q.query{where}
        ORDER BY matched DESC, rank DESC, d.product_id
        LIMIT %s
    """
    with connection.cursor() as cur:
        cur.execute(sql, [*any_params, *any_params, *params, limit])
        # Rounded: rank differences in the 7th digit are float noise, not evidence.
        return [KeywordHit(pid, int(m), round(float(r), 5)) for pid, m, r in cur.fetchall()]


def words_known(words: Iterable[str]) -> set[str]:
    """Which of ``words`` are catalog words (exactly)."""
    words = sorted({normalise(w) for w in words})
    if not words:
        return set()
    with connection.cursor() as cur:
        cur.execute("SELECT word FROM search_catalogword WHERE word = ANY(%s)", [words])
        return {row[0] for row in cur.fetchall()}


def word_closest(word: str, *, min_similarity: float) -> str | None:
    """The catalog word most similar to ``word`` by trigrams, if similar enough."""
    word = normalise(word)[:100]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT word, similarity(word, %s) AS s FROM search_catalogword "
            "WHERE word %% %s ORDER BY s DESC, word LIMIT 1",
            [word, word],
        )
        row = cur.fetchone()
    return row[0] if row and row[1] >= min_similarity else None


def products_filtered(
    *, filters: CatalogFilters, limit: int, offset: int = 0, exclude_product_ids: Sequence[int] = ()
) -> list[int]:
    """Product ids within ``filters``, cheapest first: the answer to a query that is only a
    price phrase ("under €30"), which has nothing for either leg to rank by."""
    where, params = filters_sql(filters)
    if exclude_product_ids:
        where += " AND NOT (p.id = ANY(%s))"
        params.append(list(exclude_product_ids))
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT p.id FROM shop_product p WHERE true{where} ORDER BY p.price, p.id "
            "LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return [row[0] for row in cur.fetchall()]


def price_quantile(*, category_slugs: Sequence[str], fraction: float) -> Decimal | None:
    """The price below which ``fraction`` of the products (of these categories, or all) lie:
    what "cheap" means in this catalog."""
    where, params = "", []
    if category_slugs:
        where = "WHERE p.category_id IN (SELECT id FROM shop_category WHERE slug = ANY(%s))"
        params.append(list(category_slugs))
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY p.price) FROM shop_product p "
            f"{where}",
            [fraction, *params],
        )
        value = cur.fetchone()[0]
    return None if value is None else Decimal(str(round(value, 2)))


def words_prefixed(prefix: str, *, limit: int) -> list[str]:
    """Catalog words starting with ``prefix`` (the trigram index serves LIKE 'abc%' too),
    shortest first."""
    prefix = normalise(prefix)[:100]
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with connection.cursor() as cur:
        cur.execute(
            "SELECT word FROM search_catalogword WHERE word LIKE %s "
            "ORDER BY length(word), word LIMIT %s",
            [pattern, limit],
        )
        return [row[0] for row in cur.fetchall()]


def titles_matching(text: str, *, limit: int) -> list[str]:
    """Distinct product titles whose document matches ``text`` as a prefix query ("red sne"
    -> 'red' & 'sne':*), most frequent first: the titles the search box offers."""
    words = re.findall(r"[^\W_]+", normalise(text))[:8]
    if not words:
        return []
    # Letters and digits only, so nothing of tsquery syntax reaches to_tsquery.
    query = " & ".join(f"{w}:*" for w in words)
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT p.title FROM search_productdocument d JOIN shop_product p ON p.id = d.product_id
            WHERE d.document @@ to_tsquery('{CONFIG}', %s)
            GROUP BY p.title ORDER BY count(*) DESC, p.title LIMIT %s
            """,
            [query, limit],
        )
        return [row[0] for row in cur.fetchall()]
