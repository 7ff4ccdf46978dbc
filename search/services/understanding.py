"""Query understanding against this catalog: the lexicon (categories, colours, synonyms) and
the spell checker that ``search.query_understanding.parse_query`` is given, and the filters
that what it understood becomes."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache

from search.filters import CatalogFilters
from search.models import Synonym
from search.query_understanding import STOP_WORDS, Lexicon, ParsedQuery, key, parse_query
from search.synonyms import synonym_expansions
from search.vectorstore import keyword
from shop.models import Category, Product

_LEXICON_KEY = "search:lexicon:v2"  # v2: intents (a cached v1 lacks them)
# "cheap": the cheapest third of the (recognised categories of the) catalog.
CHEAP_FRACTION = 0.33
# Trigram similarity a catalog word needs to replace a misspelt one ("snekers" -> "sneaker").
TYPO_SIMILARITY = 0.35
# At most this many unknown words are spell-checked (one trigram lookup each).
MAX_SPELLED = 6


def lexicon_build() -> Lexicon:
    categories, names = {}, {}
    for name, slug in Category.objects.values_list("name", "slug"):
        names[slug] = name
        for form in (name, slug, slug.replace("-", " ")):
            categories[key(form)] = slug
    colours = Product.objects.exclude(colour="").values_list("colour", flat=True).distinct()
    rows = list(Synonym.objects.all())
    expansions = synonym_expansions(rows)
    return Lexicon(
        colours=frozenset(c.lower() for c in colours),
        categories=categories,
        category_names=names,
        synonyms={key(term): tuple(targets) for term, targets in expansions.items()},
        intents=frozenset(key(r.term) for r in rows if r.intent),
    )


def lexicon() -> Lexicon:
    """Cached for ``SEARCH_LEXICON_SECONDS``; a synonym edited in the admin clears it."""
    found = cache.get(_LEXICON_KEY)
    if found is None:
        found = lexicon_build()
        cache.set(_LEXICON_KEY, found, settings.SEARCH_LEXICON_SECONDS)
    return found


def lexicon_forget() -> None:
    cache.delete(_LEXICON_KEY)


def spell_checker(lex: Lexicon):
    """Corrections for words neither the lexicon nor the catalog knows: the nearest lexicon
    word ("navvy" -> "navy"), else the nearest catalog word by trigrams, with the same first
    letter (as search engines' fuzzy matching keeps a prefix)."""

    def spell(words: list[str]) -> dict[str, str]:
        candidates = [
            w for w in dict.fromkeys(words) if len(w) >= 4 and w.isalpha() and w not in STOP_WORDS
        ][:MAX_SPELLED]
        known = keyword.words_known(candidates)
        fixes = {}
        for word in candidates:
            if word in known or keyword.normalise(word) in known or key(word) in known:
                continue
            fix = lex.closest(key(word)) or keyword.word_closest(
                word, min_similarity=TYPO_SIMILARITY
            )
            # A misspelling keeps its first letter ("snekers", "trowsers"); a fix that changes
            # it reads another word ("racket" -> "jacket") and turns a question about
            # something the shop does not sell into a confident answer.
            if fix and fix[:1] == word[:1]:
                fixes[word] = fix
        return fixes

    return spell


def query_understand(query: str) -> ParsedQuery:
    lex = lexicon()
    return parse_query(query, lex, spell=spell_checker(lex))


def filters_understood(filters: CatalogFilters, parsed: ParsedQuery) -> CatalogFilters:
    """The request's filters narrowed by what the query said (a bound the shopper set
    explicitly and a phrase's bound both hold); recognised colours and categories are boosts,
    not filters, so they are not here."""
    lo, hi = parsed.min_price, parsed.max_price
    if parsed.cheap and hi is None:
        hi = keyword.price_quantile(category_slugs=parsed.categories, fraction=CHEAP_FRACTION)
    return dataclasses.replace(
        filters,
        min_price=_tighter(filters.min_price, lo, max),
        max_price=_tighter(filters.max_price, hi, min),
        exclude_colours=tuple(parsed.exclude_colours),
        exclude_words=tuple(parsed.negative_words),
    )


def _tighter(a: Decimal | None, b: Decimal | None, pick) -> Decimal | None:
    return b if a is None else a if b is None else pick(a, b)


def modifier_understood(text: str) -> ParsedQuery | None:
    """The words of a "this, but ..." modifier, read like a query (no spelling fixes: a
    modifier is short and a wrong fix would steer the look), or None when reading them
    changes nothing (no shade or synonym mapped, no negation, no price): the text then goes
    to the model exactly as typed, as before."""
    parsed = parse_query(text, lexicon())
    changed = any(
        u.kind in ("not", "price")
        or (u.kind in ("colour", "category") and key(u.span) != key(u.value))
        for u in parsed.understood
    )
    # A category alone ("as a boot") is a change too: the look's colour is kept for it.
    return parsed if changed or category_change(parsed) else None


def category_change(parsed: ParsedQuery) -> bool:
    """ "This, but as a boot": the modifier names a category and no colour, so the shopper
    wants the look's colour on another kind of product."""
    return bool(parsed.categories) and not parsed.colours
