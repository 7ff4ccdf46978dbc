"""Autocomplete for the search box: categories, synonyms and titles, prefix and typo
tolerant (``GET /api/suggest/``)."""

from __future__ import annotations

from dataclasses import dataclass

from search.query_understanding import key
from search.services.understanding import TYPO_SIMILARITY, lexicon
from search.vectorstore import keyword


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str  # category | synonym | title | word


def suggestions_for(*, text: str, limit: int = 8) -> list[Suggestion]:
    """What to offer while ``text`` is typed: the last word completed against category names
    and synonym terms (the rest of the text kept), then catalog titles matching the whole text
    as prefixes; if nothing starts that way, the nearest catalog word (a typo)."""
    text = " ".join(text.split())[:200]
    words = text.split(" ")
    last, head = key(words[-1]) if words[-1] else "", " ".join(words[:-1])
    if not last:
        return []
    lex = lexicon()
    found: list[Suggestion] = []

    def offer(completion: str, kind: str) -> None:
        full = f"{head} {completion}".strip()
        if full.lower() not in {s.text.lower() for s in found} and len(found) < limit:
            found.append(Suggestion(full, kind))

    for name in sorted(lex.category_names.values(), key=len):
        if key(name).startswith(last):
            offer(name.lower(), "category")
    for term in sorted(lex.synonyms, key=len):
        if term.startswith(last) and term != last:
            offer(term, "synonym")
    seen = {s.text.lower() for s in found}
    for title in keyword.titles_matching(text, limit=limit):
        # A title matched every word typed, so it replaces the whole text.
        if len(found) < limit and title.lower() not in seen:
            found.append(Suggestion(title, "title"))
            seen.add(title.lower())
    for word in keyword.words_prefixed(last, limit=limit):
        offer(word, "word")
    if not found:
        fix = lex.closest(last) or keyword.word_closest(last, min_similarity=TYPO_SIMILARITY)
        if fix:
            offer(fix, "word")
    return found
