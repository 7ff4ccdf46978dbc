"""The losses added to CLIP's contrastive one (``open_clip.ClipLoss``)."""

from __future__ import annotations

from search.embeddings.clip import import_torch


def compose_loss(img, word_txt, scale, image_share: float = 0.7, positives=None):
    """Cross-entropy of finding an item's other colour with ``image + text(other colour)``.

    ``img`` holds n items in one colour and then the same n items in another; ``word_txt[j]``
    is the text vector of the colour of image j's partner (j + n mod 2n). The query is
    ``image_share * image + (1 - image_share) * text``, re-normalised, as the search combines
    terms; candidates are all images of the batch, so the query's own image (same item, old
    colour) is the hardest negative. ``positives`` (bool [2n, 2n]), when given, spreads the
    target over every image that answers the query (e.g. same category in the new colour), as
    a shopper would; by default only the partner counts.
    """
    torch, _ = import_torch()
    F = torch.nn.functional

    n2 = len(img)
    query = F.normalize(image_share * img + (1 - image_share) * word_txt, dim=-1)
    logits = scale * query @ img.T
    if positives is None:
        partner = (torch.arange(n2, device=img.device) + n2 // 2) % n2
        return F.cross_entropy(logits, partner)
    target = positives.float()
    target = target / target.sum(dim=1, keepdim=True).clamp_min(1)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def same_label_loss(img, labels, scale):
    """Supervised contrastive loss on images: each image's neighbours should share its label."""
    torch, _ = import_torch()
    F = torch.nn.functional

    n = len(img)
    eye = torch.eye(n, dtype=torch.bool, device=img.device)
    logits = (scale * img @ img.T).masked_fill(eye, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~eye
    has = positives.any(dim=1)
    if not bool(has.any()):
        return img.sum() * 0
    target = positives.float() / positives.sum(dim=1, keepdim=True).clamp_min(1)
    log_prob = F.log_softmax(logits, dim=1).masked_fill(eye, 0)
    return -(target * log_prob).sum(dim=1)[has].mean()
