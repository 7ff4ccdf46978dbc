"""What the shopper pages say when a request cannot be answered: a sentence that says what
to do, instead of a serializer's field errors (the API keeps those, for programs)."""

from __future__ import annotations

CHOOSE_PHOTO = (
    "Choose a photo to search with: press “Choose a photo”, drop one on the box or paste it."
)
PHOTO_EXPIRED = "We no longer have your photo (photos are kept for an hour): choose it again."
_FIELD_HINTS = {
    "q": "Type what you are looking for, for example “red sneakers under 50”.",
    "crop": "The selected region is not valid: select it on the photo again, or clear it.",
    "min_price": "Prices are amounts of 0 or more, like 25 or 49.90.",
    "max_price": "Prices are amounts of 0 or more, like 25 or 49.90.",
    "colour": "Choose a colour from the list.",
    "text": "Describe the change in fewer words (at most 2,000 characters).",
    "negative": "Describe what to avoid in fewer words (at most 2,000 characters).",
    "text_weight": "Move the slider between the photo and your words.",
    "offset": "That page is out of range: start again from the first page.",
    "sort": "Choose an order from the list.",
}
_GENERAL_HINTS = {
    "Send exactly one of": CHOOSE_PHOTO,
    "min_price must not exceed": (
        "The lowest price is above the highest: swap them or clear one of them."
    ),
}


def shopper_message(errors: dict) -> str:
    """A serializer's field errors as sentences a shopper can act on (the API keeps its own)."""
    said: list[str] = []
    for field, messages in errors.items():
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
        if field == "category":
            value = text.split("'")[1] if text.count("'") >= 2 else ""
            hint = f"Unknown category “{value}”: choose one from the list."
        elif field == "image":
            # The image field's own messages are written for people already; this one is not.
            hint = CHOOSE_PHOTO if "multipart" in text else text
        elif field in _FIELD_HINTS:
            hint = _FIELD_HINTS[field]
        else:
            hint = next((h for k, h in _GENERAL_HINTS.items() if k in text), text)
        if hint not in said:
            said.append(hint)
    return " ".join(said)
