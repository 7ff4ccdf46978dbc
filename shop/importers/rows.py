"""Reading a catalog file: formats, row validation and image fetching, before any write."""

from __future__ import annotations

import csv
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

from django.utils.text import slugify

from shop.images import InvalidImage, max_upload_bytes, open_image

Format = Literal["csv", "jsonl"]

REQUIRED = ("title", "price", "category", "images")
OPTIONAL = ("description", "currency", "colour", "attributes", "in_stock", "sku")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
# Remote images come from suppliers' servers: a slow one must not stall the import forever.
HTTP_TIMEOUT_SECONDS = 20
FETCH_THREADS = 8
_MAX_PRICE = Decimal("99999999.99")  # Product.price is DECIMAL(10, 2)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (unknown format, missing columns)."""


class RowInvalid(ValueError):
    """One row cannot be imported; ``str()`` is the reason shown to the person importing."""


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass(frozen=True)
class CatalogRow:
    line: int
    title: str
    price: Decimal
    category: str
    images: tuple[str, ...]
    description: str = ""
    currency: str = "EUR"
    colour: str = ""
    attributes: dict = field(default_factory=dict)
    in_stock: bool = True
    sku: str | None = None

    @property
    def key(self) -> str:
        """The idempotency key stored in ``Product.external_id``.

        Without a SKU the key hashes what identifies a product to a person: its title, its
        category and its pictures. Editing any of those in the file makes a new product.
        """
        if self.sku:
            return self.sku
        payload = json.dumps([self.title, self.category, list(self.images)], ensure_ascii=False)
        return "auto:" + hashlib.sha256(payload.encode()).hexdigest()[:40]


def catalog_format_guess(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportFileError(
        f"Cannot tell the format of {path.name!r} from its extension: use .csv or .jsonl, "
        "or pass --format csv|jsonl."
    )


def catalog_rows_read(path: Path, fmt: Format) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, raw field dict) per record, or a RowError for a record that is unreadable."""
    if fmt == "csv":
        yield from _csv_rows(path)
    else:
        yield from _jsonl_rows(path)


def catalog_rows_count(path: Path, fmt: Format) -> int:
    return sum(1 for _ in catalog_rows_read(path, fmt))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    # utf-8-sig: spreadsheets often save CSV with a byte order mark.
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise ImportFileError(
                f"{path.name}: the header has no column {', '.join(missing)} "
                f"(columns needed: {', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)})."
            )
        while True:
            start = reader.line_num + 1  # a quoted field may span lines: report where it begins
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, RowError(start, f"unreadable CSV: {exc}")
                continue
            if not values or not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield (
                    start,
                    RowError(
                        start,
                        f"expected {len(header)} fields as in the header, found {len(values)}",
                    ),
                )
                continue
            yield start, dict(zip(header, values, strict=True))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open(encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, RowError(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                yield number, RowError(number, "each line must be a JSON object")
                continue
            yield number, {str(k).strip().lower(): v for k, v in record.items()}


def catalog_row_parse(line: int, raw: dict[str, Any]) -> CatalogRow:
    """Validate one record; raises RowInvalid with the first problem found."""
    title = _text(raw, "title", max_length=200, required=True)
    category = _text(raw, "category", max_length=100, required=True)
    if not slugify(category):
        raise RowInvalid(f"category: {category!r} needs at least one letter or digit")
    currency = (_text(raw, "currency", max_length=3) or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise RowInvalid(f"currency: {currency!r} is not a 3-letter code such as EUR")
    sku = _text(raw, "sku", max_length=255) or None
    return CatalogRow(
        line=line,
        title=title,
        price=_price(raw.get("price")),
        category=category,
        images=_image_refs(raw.get("images")),
        description=_text(raw, "description", max_length=None),
        currency=currency,
        colour=_text(raw, "colour", max_length=40),
        attributes=_attributes(raw.get("attributes")),
        in_stock=_bool(raw.get("in_stock"), name="in_stock", default=True),
        sku=sku,
    )


def _text(raw: dict, name: str, *, max_length: int | None, required: bool = False) -> str:
    value = raw.get(name)
    if value is None:
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # JSON SKUs are often numbers
    if not isinstance(value, str):
        raise RowInvalid(f"{name}: expected text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise RowInvalid(f"{name}: missing")
    if max_length is not None and len(value) > max_length:
        raise RowInvalid(f"{name}: longer than {max_length} characters")
    return value


def _price(value: Any) -> Decimal:
    if value is None or value == "" or isinstance(value, bool):
        raise RowInvalid("price: missing")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowInvalid(f"price: {value!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise RowInvalid(f"price: {value!r} must be zero or more")
    if price.as_tuple().exponent < -2:
        raise RowInvalid(f"price: {value!r} has more than 2 decimal places")
    if price > _MAX_PRICE:
        raise RowInvalid(f"price: {value!r} is above {_MAX_PRICE}")
    return price


def _bool(value: Any, *, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowInvalid(f"{name}: {value!r} is not true/false (or yes/no, 1/0)")


def _attributes(value: Any) -> dict:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowInvalid(f"attributes: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise RowInvalid('attributes: must be a JSON object such as {"size": "M"}')
    return value


def _image_refs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        refs = value.split("|")  # CSV: several images in one cell
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        refs = value
    elif value is None:
        refs = []
    else:
        raise RowInvalid("images: expected a list of paths or URLs")
    refs = [r.strip() for r in refs if r.strip()]
    if not refs:
        raise RowInvalid("images: at least one image path or URL is needed")
    return tuple(refs)


def image_fetch(ref: str, *, base_dir: Path) -> tuple[str, bytes]:
    """Read one image (local path relative to ``base_dir``, or http(s) URL) and check it decodes.

    Returns (file name, bytes). Raises RowInvalid saying what is wrong with that image.
    """
    limit = max_upload_bytes()
    scheme = urlparse(ref).scheme.lower()
    if scheme in ("http", "https"):
        data = _download(ref, limit)
        name = PurePosixPath(urlparse(ref).path).name
    elif scheme and len(scheme) > 1:  # "C:\\..." parses as scheme "c": a Windows path
        raise RowInvalid(f"image {ref!r}: only local paths and http(s) URLs are supported")
    else:
        path = Path(ref).expanduser()
        path = path if path.is_absolute() else base_dir / path
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise RowInvalid(f"image {ref!r}: no such file ({path})") from None
        except OSError as exc:
            raise RowInvalid(f"image {ref!r}: cannot be read ({exc.strerror})") from None
        name = path.name
    if len(data) > limit:
        raise RowInvalid(f"image {ref!r}: larger than {limit // (1024 * 1024)} MB")
    try:
        decoded = open_image(data)  # the same checks a search upload gets
    except InvalidImage as exc:
        raise RowInvalid(f"image {ref!r}: {exc}") from None
    if not PurePosixPath(name).suffix:
        name = f"{name or 'image'}.{(decoded.format or 'png').lower()}"
    return name, data


def _download(url: str, limit: int) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "visual-shop-import/1"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise RowInvalid(f"image {url!r}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RowInvalid(f"image {url!r}: download failed ({reason})") from None
