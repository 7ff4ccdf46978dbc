"""Query understanding: what a shopper's sentence asks for, before any leg runs.

Pure Python over a ``Lexicon`` (catalog colours, categories, synonyms), so it is tested
without a database. ``parse_query`` pulls out price phrases (filters), colours and shades
and categories with their synonyms (boosts: they go to both legs in canonical words, never
a hard filter), negations (excluded colours, negative words) and filler; the remaining words
go to both legs unchanged. ``understood`` lists what was recognised, for the page's chips
and the API.

Intents ("winter", "for my laptop", "office") are synonyms marked as such: they boost the
categories they list, first one first, like a garment word. When the query also names a
product, an intent narrows to the categories it shares with it ("winter boots": boots) or,
sharing none ("a gym bag"), becomes a plain keyword: the product named wins.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

# A shopper's sentence, not a document: past this many words the rest is noise (and a
# 10,000-character query must cost no more than a short one).
MAX_WORDS = 48

_NUM = r"(\d{1,7}(?:[.,]\d{1,2})?)"
_CUR = r"(?:[€$£]\s*)?"
_UNIT = r"(?:\s*(?:€|\$|£|eur|euros?|usd|dollars?|gbp|pounds?|bucks)\b)?"
_PRICE_PATTERNS = [
    ("between", rf"\b(?:between|from)\s+{_CUR}{_NUM}{_UNIT}\s*(?:and|to|-)\s*{_CUR}{_NUM}{_UNIT}"),
    (
        "max",
        rf"(?:\b(?:under|below|less\s+than|cheaper\s+than|up\s+to|at\s+most|max(?:imum)?"
        rf"|no\s+more\s+than|within)\s*|<\s*){_CUR}{_NUM}{_UNIT}",
    ),
    (
        "min",
        rf"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?)\s*|>\s*){_CUR}{_NUM}{_UNIT}",
    ),
    ("cheap", r"\b(?:cheap(?:est)?|inexpensive|budget|affordable|bargains?)\b"),
]
_PRICE_RE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in _PRICE_PATTERNS))
_WORD_RE = re.compile(r"\w[\w'-]*")
_NEGATORS = {"not", "no", "without", "except", "non", "excluding", "minus"}
# Filler and function words: "I want to buy", "do you have", "show me some", "something to
# wear when it's cold" (the words of a request around an intent).
STOP_WORDS = frozenset(
    """a an the some any i i'm im i'd id me my we us you your want wanted wanna would like
    looking look for to buy purchase get need needs please do does have has sell sells show
    find search something anything thing things one ones pair pairs of in on at with and or
    but is are be that this these those it its can could give see got which what kind
    colour color coloured colored style item items product products shop store just really
    very nice good new some wear wearing worn outfit outfits clothes clothing attire apparel
    garment garments gear kit stuff keep stay go going goes weather when where how should
    will shall am was were been there here so too also it's i'll i've what's there's day
    days night tonight today out outside""".split()
)


def singular(word: str) -> str:
    """English plural -> singular, well enough for garment words ("dresses", "trousers")."""
    if len(word) <= 3 or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def key(phrase: str) -> str:
    """Lookup key of a word or phrase: lower case, hyphens joined, words singular."""
    words = re.sub(r"(\w)-(\w)", r"\1\2", phrase.lower()).split()
    return " ".join(singular(w) for w in words)


@dataclass(frozen=True)
class Lexicon:
    """What the catalog calls things. ``categories``: key -> slug (names, slugs and their
    plurals); ``synonyms``: key -> target words (already expanded, in the order written);
    ``intents``: the synonym keys that say what a product is for, not what it is."""

    colours: frozenset[str] = frozenset()
    categories: Mapping[str, str] = field(default_factory=dict)
    category_names: Mapping[str, str] = field(default_factory=dict)
    synonyms: Mapping[str, Sequence[str]] = field(default_factory=dict)
    intents: frozenset[str] = frozenset()

    def colour_of(self, k: str) -> str | None:
        if k in self.colours:
            return k
        return next((t for t in sorted(self.synonyms.get(k, ())) if t in self.colours), None)

    def categories_of(self, k: str) -> list[str]:
        """Category slugs ``k`` names, in the order its synonym lists them."""
        if k in self.categories:
            return [self.categories[k]]
        targets = (key(t) for t in self.synonyms.get(k, ()))
        return list(dict.fromkeys(self.categories[t] for t in targets if t in self.categories))

    def closest(self, word: str) -> str | None:
        """The lexicon word nearest to a misspelt one ("navvy" -> "navy")."""
        words = [*self.colours, *self.categories, *(k for k in self.synonyms if " " not in k)]
        found = difflib.get_close_matches(word, words, n=1, cutoff=0.8)
        return found[0] if found else None


@dataclass(frozen=True)
class Understood:
    """One recognised part of the query: ``span`` is the text a chip's × removes."""

    kind: str  # price | colour | category | not | typo
    label: str
    span: str
    value: str = ""


@dataclass
class ParsedQuery:
    query: str
    vector_text: str = ""
    groups: list[list[str]] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    # Intent words read as such ("winter"), each one group: what it is for, not what it is.
    intents: list[str] = field(default_factory=list)
    # Intents a product named in the query outranks ("gym" of "gym bag"): keywords only, each
    # one group that a close match need not match.
    context: list[str] = field(default_factory=list)
    exclude_colours: list[str] = field(default_factory=list)
    negative_words: list[str] = field(default_factory=list)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    cheap: bool = False
    ignored: list[str] = field(default_factory=list)
    understood: list[Understood] = field(default_factory=list)
    did_you_mean: str | None = None

    @property
    def has_terms(self) -> bool:
        """Anything for the legs to rank by (otherwise only filters, or nothing, remain)."""
        return bool(self.groups)

    @property
    def is_empty(self) -> bool:
        return not (self.groups or self.negative_words or self.exclude_colours) and (
            self.min_price is None and self.max_price is None and not self.cheap
        )


def _amount(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _prices(text: str, parsed: ParsedQuery) -> str:
    """Price phrases -> bounds and chips; returns the text without them."""

    def take(m: re.Match) -> str:
        kind = m.lastgroup
        span = m.group(0).strip()
        numbers = [_amount(n) for n in re.findall(r"\d{1,7}(?:[.,]\d{1,2})?", span)]
        if kind == "between" and len(numbers) == 2:
            parsed.min_price, parsed.max_price = sorted(numbers)
            label = f"€{parsed.min_price}–€{parsed.max_price}"
        elif kind == "max" and numbers:
            parsed.max_price = numbers[0]
            label = f"under €{numbers[0]}"
        elif kind == "min" and numbers:
            parsed.min_price = numbers[0]
            label = f"over €{numbers[0]}"
        elif kind == "cheap":
            parsed.cheap = True
            label = "cheap"
        else:
            return m.group(0)
        parsed.understood.append(Understood("price", label, span))
        return " "

    return _PRICE_RE.sub(take, text)


def parse_query(
    query: str, lexicon: Lexicon, *, spell: Callable[[list[str]], dict[str, str]] | None = None
) -> ParsedQuery:
    """Read ``query``. ``spell`` maps unrecognised words to corrections (the catalog's
    vocabulary, ``pg_trgm``); when it corrects any, the corrected query is read instead and
    offered as "did you mean"."""
    text = query.lower()
    parsed = ParsedQuery(query=query)
    words = _WORD_RE.findall(_prices(text, parsed))[:MAX_WORDS]
    units = _units(words, lexicon, parsed)
    # Categories the query names as products ("bag", "trainers"): intents yield to them.
    named = {c for u in units if not (u.negated or u.intent) for c in u.categories}
    free: list[str] = []
    vector_parts: list[str] = []
    for u in units:
        unit, k, colour, cats = u.text, u.key, u.colour, u.categories
        if u.negated:
            if colour:
                parsed.exclude_colours.append(colour)
            else:
                parsed.negative_words.append(unit)
            parsed.understood.append(
                Understood("not", f"not {unit}", _neg_span(text, unit), colour or unit)
            )
            continue
        if u.intent and named:
            cats = [c for c in cats if c in named]
            if not cats:  # "gym bag": a word for the keyword leg, the bag is what is wanted
                parsed.groups.append([unit])
                parsed.context.append(unit)
                continue
        if colour:
            parsed.colours.append(colour)
            parsed.groups.append(sorted({unit, colour}))
            vector_parts.append(colour)
            label = colour if colour == k else f"{unit} ({colour})"
            parsed.understood.append(Understood("colour", f"colour: {label}", unit, colour))
        elif cats:
            parsed.categories.extend(c for c in cats if c not in parsed.categories)
            if u.intent:
                parsed.intents.append(unit)
            names = [lexicon.category_names.get(c, c) for c in cats]
            parsed.groups.append(sorted({unit, *names}))
            vector_parts.append(names[0].lower())
            # An intent's chip says which word was read so ("winter: Coat / Pullover").
            label = f"{unit if u.intent else 'category'}: {' / '.join(names)}"
            parsed.understood.append(Understood("category", label, unit, ",".join(cats)))
        else:
            targets = sorted(lexicon.synonyms.get(k, ()))
            parsed.groups.append([unit, *targets])
            vector_parts.append(unit)
            free.append(unit)
    parsed.vector_text = " ".join(vector_parts)
    if spell and free:
        fixes = {w: f for w, f in spell(free).items() if f and f != w}
        if fixes:
            corrected = _WORD_RE.sub(lambda m: fixes.get(m.group(0), m.group(0)), text)
            better = parse_query(corrected, lexicon)
            better.query, better.did_you_mean = query, corrected
            better.understood.append(
                Understood("typo", f"did you mean: {corrected}", "", corrected)
            )
            return better
    return parsed


@dataclass(frozen=True)
class _Unit:
    """A word or two-word phrase of the query, as the lexicon reads it."""

    text: str
    key: str
    colour: str | None
    categories: list[str]
    intent: bool
    negated: bool


def _units(words: list[str], lexicon: Lexicon, parsed: ParsedQuery) -> list[_Unit]:
    """The query's units, two-word ones first ("ankle boot", "sky blue", "black tie"); filler
    goes to ``parsed.ignored``, a negator marks the unit after it."""
    units: list[_Unit] = []
    i, negate = 0, False
    while i < len(words):
        for size in (2, 1):
            unit = " ".join(words[i : i + size])
            k = key(unit)
            colour, cats = lexicon.colour_of(k), lexicon.categories_of(k)
            if colour or cats or k in lexicon.synonyms or size == 1:
                break
        i += size
        if unit in _NEGATORS:
            negate = True
        elif unit in STOP_WORDS:
            parsed.ignored.append(unit)
        else:
            intent = bool(cats) and not colour and k in lexicon.intents
            units.append(_Unit(unit, k, colour, cats, intent, negate))
            negate = False
    return units


def _neg_span(text: str, unit: str) -> str:
    found = re.search(rf"\b(?:{'|'.join(_NEGATORS)})\s+{re.escape(unit)}\b", text)
    return found.group(0) if found else unit


def query_without(query: str, span: str) -> str:
    """The query a chip's × link searches: ``query`` less the understood ``span``."""
    if not span:
        return query
    pattern = re.compile(re.escape(span), re.IGNORECASE)
    return re.sub(r"\s+", " ", pattern.sub(" ", query, count=1)).strip()
