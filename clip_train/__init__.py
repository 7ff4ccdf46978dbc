"""CLIP training, free of Django: train a model from scratch or fine-tune pretrained weights.

Laid out like open_clip's own ``open_clip_train``: ``options`` (what a run depends on),
``data`` (image-caption pairs and the sources that make them; ``fashion`` renders the
Fashion-MNIST products), ``model`` (load a model to train), ``losses``, ``trainer`` (one
optimisation step, validation), ``checkpoint`` (a folder open_clip loads as ``local-dir:``) and
``main`` (``train()``).

It shares the encoder runtime ``search.embeddings.clip`` (the torch import, image conversion,
local-weights naming) and nothing else of the web app: data that lives in the shop's database
comes in as a ``data.DataSource`` that the caller passes to ``train()`` (the search app's
``search.training_data`` adds the catalog). torch and open_clip are imported only when a
function needs them, through ``search.embeddings.clip.import_torch``.
"""
