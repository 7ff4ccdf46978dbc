"""Fashion-MNIST (Zalando product photos, MIT licence) turned into colour product photos.

The photos are 28x28 greyscale; each item gets a colour from a named palette: the garment's
darkness becomes the colour's saturation on a light background, upscaled cleanly. Everything
is deterministic for a given seed.

Plain files, no Django: training renders these products on the fly (``clip_train.data``), the
shop's demo catalog (``shop.demo.catalog``) saves them as products, and the search evaluation
asks for them by colour and category.
"""

from __future__ import annotations

import gzip
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
PUBLIC_URL = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"

CATEGORIES = [
    ("T-shirt", "T-shirts", "tshirt"),
    ("Trousers", "trousers", "trousers"),
    ("Pullover", "pullovers", "pullover"),
    ("Dress", "dresses", "dress"),
    ("Coat", "coats", "coat"),
    ("Sandal", "sandals", "sandal"),
    ("Shirt", "shirts", "shirt"),
    ("Sneaker", "sneakers", "sneaker"),
    ("Bag", "bags", "bag"),
    ("Ankle boot", "ankle boots", "ankle-boot"),
]

# Named colours chosen to be distinct for people and for a small model alike.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (210, 30, 40),
    "orange": (245, 130, 20),
    "yellow": (240, 200, 30),
    "green": (40, 150, 60),
    "blue": (30, 80, 200),
    "purple": (130, 50, 160),
    "pink": (240, 120, 170),
    "brown": (120, 70, 30),
    "black": (25, 25, 25),
    "white": (235, 235, 235),
    "grey": (128, 128, 128),
}

BACKGROUND = (248, 248, 246)
PRICE_RANGE = {  # EUR, per category, so price filters mean something in the demo
    "tshirt": (9, 35),
    "trousers": (25, 90),
    "pullover": (25, 80),
    "dress": (30, 150),
    "coat": (60, 250),
    "sandal": (15, 70),
    "shirt": (20, 70),
    "sneaker": (40, 160),
    "bag": (25, 300),
    "ankle-boot": (50, 220),
}


@dataclass(frozen=True)
class DemoItem:
    index: int
    label: int
    colour: str

    @property
    def category_name(self) -> str:
        return CATEGORIES[self.label][0]

    @property
    def category_slug(self) -> str:
        return CATEGORIES[self.label][2]

    @property
    def title(self) -> str:
        return f"{self.colour.capitalize()} {self.category_name}"


def _fetch(name: str, cache_dir: Path) -> Path:
    local = SYSTEM_DIR / name
    if local.exists():
        return local
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / name
    if not target.exists():
        urllib.request.urlretrieve(PUBLIC_URL + name, target)
    return target


def load_split(split: str, cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N,28,28], labels uint8 [N]) for split 'train' (60k) or 't10k' (10k)."""
    cache_dir = cache_dir or Path.home() / ".cache" / "fashion-mnist"
    with gzip.open(_fetch(f"{split}-images-idx3-ubyte.gz", cache_dir)) as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        images = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, rows, cols)
    with gzip.open(_fetch(f"{split}-labels-idx1-ubyte.gz", cache_dir)) as f:
        struct.unpack(">II", f.read(8))
        labels = np.frombuffer(f.read(), dtype=np.uint8)
    return images, labels


def colourise(gray: np.ndarray, colour: str, size: int = 128) -> Image.Image:
    """28x28 ink-on-black -> a ``colour`` product on a light background, ``size`` px square."""
    ink = Image.fromarray(gray, "L").resize((size, size), Image.Resampling.BICUBIC)
    ink = ink.filter(ImageFilter.GaussianBlur(radius=size / 224))
    alpha = np.asarray(ink, dtype=np.float32)[..., None] / 255.0
    # Keep the item's texture: darker ink -> a slightly darker shade of the colour.
    shade = 0.75 + 0.25 * alpha
    rgb = np.array(PALETTE[colour], dtype=np.float32) * shade
    bg = np.array(BACKGROUND, dtype=np.float32)
    out = bg * (1 - alpha) + rgb * alpha
    return Image.fromarray(out.clip(0, 255).astype(np.uint8), "RGB")


def sample_items(
    labels: np.ndarray,
    count: int,
    seed: int,
    colours: list[str] | None = None,
    *,
    balanced: bool = False,
) -> list[DemoItem]:
    """``count`` items balanced over categories, each with a seeded palette colour.

    ``balanced`` cycles the colours too, so every (colour, category) pair gets the same number
    of items: what an evaluation needs to know how many right answers exist.
    """
    rng = np.random.default_rng(seed)
    colours = colours or list(PALETTE)
    n_cat = len(CATEGORIES)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(n_cat)]
    items = []
    for i in range(count):
        label = i % n_cat
        index = int(per_class[label][i // n_cat])
        if balanced:
            colour = colours[(i // n_cat) % len(colours)]
        else:
            colour = colours[int(rng.integers(len(colours)))]
        items.append(DemoItem(index=index, label=label, colour=colour))
    return items


_DESCRIPTIONS = [
    "A {colour} {noun} from our everyday collection.",
    "Classic {noun} in {colour}, easy to combine.",
    "Our {colour} {noun}: comfortable, durable and good value.",
]


def describe(item: DemoItem, rng: np.random.Generator) -> tuple[str, float]:
    """(description, price) for an item."""
    noun = CATEGORIES[item.label][0].lower()
    text = _DESCRIPTIONS[int(rng.integers(len(_DESCRIPTIONS)))].format(
        colour=item.colour, noun=noun
    )
    lo, hi = PRICE_RANGE[item.category_slug]
    price = round(float(rng.uniform(lo, hi)), 0) - 0.01
    return text, price


# Shoppers' words the demo model learns besides the catalog's own (issue 10). Words in
# ``HELD_OUT_WORDS`` are never put in a caption: the evaluation's held-out suites use them to
# show what the model (and the keyword leg's synonym data) does with words it never saw.
GARMENT_WORDS: dict[str, tuple[str, ...]] = {
    "tshirt": ("tee", "tees", "t shirt", "top", "tank top", "short sleeve top"),
    "trousers": ("jeans", "chinos", "slacks", "leggings", "joggers", "bottoms"),
    "pullover": ("hoodie", "jumper", "sweatshirt", "knitwear", "cardigan", "top"),
    "dress": ("gown", "maxi dress", "sundress", "evening dress", "summer dress"),
    "coat": ("jacket", "overcoat", "raincoat", "trench coat", "outerwear", "winter coat"),
    "sandal": ("flip flops", "sliders", "summer shoes", "shoes", "open shoes"),
    "shirt": ("blouse", "oxford shirt", "dress shirt", "top", "long sleeve shirt"),
    "sneaker": ("trainers", "running shoes", "shoes", "kicks", "sports shoes", "tennis shoes"),
    "bag": ("handbag", "tote", "backpack", "shoulder bag", "clutch", "laptop bag"),
    "ankle-boot": ("boots", "boot", "chelsea boots", "shoes", "winter boots"),
}
SHADE_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet", "cherry", "ruby", "wine"),
    "orange": ("tangerine", "amber", "pumpkin"),
    "yellow": ("mustard", "gold", "canary", "sunflower"),
    "green": ("olive", "lime", "forest green", "mint", "khaki green"),
    "blue": ("navy", "royal blue", "sky blue", "denim", "azure", "dark blue"),
    "purple": ("violet", "plum", "mauve", "lilac"),
    "pink": ("coral", "magenta", "rose", "blush", "hot pink", "salmon"),
    "brown": ("tan", "chocolate", "camel", "coffee", "chestnut"),
    "black": ("jet", "onyx", "jet black", "dark"),
    "white": ("ivory", "off-white", "snow white", "pure white"),
    "grey": ("gray", "charcoal", "slate", "ash", "light grey"),
}
HELD_OUT_WORDS = frozenset(
    # garments
    "footwear pants purse parka sweater frock tshirts booties slides button-down"
    # shades
    " cobalt burgundy cream emerald beige silver lemon peach fuchsia lavender ebony".split()
)
# Conversational wrappers; the held-out phrasings suite uses others ("looking for a ...
# please", "can I get ...", "i'd like to see your ...").
_PHRASINGS = (
    "I want to buy some {c} {p}",
    "do you have {c} {p}?",
    "show me {p} in {c}",
    "I need a {c} {s}",
    "hi, I am searching for a {s} in {c} for my sister, do you have any in stock?",
    "where can I find {c} {p}",
    "{c} {s} for women",
    "{c} {s} for men",
    "a nice {c} {s}",
    "buy {c} {p} online",
)


def captions(item: DemoItem, description: str, rng: np.random.Generator | None = None) -> list[str]:
    """Varied phrasings of one item, so differently worded queries still match.

    With ``rng``, a shopper's wording is added too: a garment synonym or a shade name drawn
    from the lists above, and a conversational sentence around the item.
    """
    singular, plural = (
        CATEGORIES[item.label][0].lower(),
        CATEGORIES[item.label][1].lower(),
    )
    c = item.colour
    out = [
        f"a {c} {singular}",
        f"{plural} in {c}",
        f"a photo of a {c} {singular}",
        f"{c} {plural}",
        f"{singular}, colour {c}",
        description,
        f"a {singular}",
        f"something {c}",
    ]
    if rng is None:
        return out
    words = GARMENT_WORDS[item.category_slug]
    noun = words[int(rng.integers(len(words)))]
    shades = SHADE_WORDS[c]
    shade = shades[int(rng.integers(len(shades)))]
    phrase = _PHRASINGS[int(rng.integers(len(_PHRASINGS)))]
    s, p = (singular, plural) if rng.random() < 0.5 else (noun, noun)
    colour = c if rng.random() < 0.6 else shade
    return out + [
        f"{c} {noun}",
        f"a {noun} in {c}",
        f"{shade} {plural}",
        f"a {shade} {singular}",
        f"{shade} {noun}",
        phrase.format(c=colour, s=s, p=p),
        phrase.format(c=c, s=singular, p=plural),
        noun,
    ]
