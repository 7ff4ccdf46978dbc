from django.db import migrations

# Everyday garment words and colour names that 0003 and 0005 miss (an admin edits them under
# Search -> Synonyms). Each maps to the demo catalog's nearest category or colour; a word whose
# meaning differs between shops or countries ("vest", "pumps", "thong", "oxford") is left out,
# and so are colour names that are mostly things ("pumpkin", "brick", "pearl"): a query about
# the thing would read as a colour the catalog knows and lose its "no close match".
ONE_WAY = {
    # garments -> categories
    "plimsoll": "sneaker",
    "high top": "sneaker",
    "skate shoe": "sneaker",
    "cargo": "trousers",
    "trackpant": "trousers",
    "track pant": "trousers",
    "culotte": "trousers",
    "duffel": "bag",
    "duffle": "bag",
    "messenger bag": "bag",
    "crossbody": "bag",
    "briefcase": "bag",
    "holdall": "bag",
    "windbreaker": "coat",
    "puffer": "coat",
    "peacoat": "coat",
    "pea coat": "coat",
    "gilet": "coat",
    "duffle coat": "coat",
    "fleece": "pullover",
    "turtleneck": "pullover",
    "crewneck": "pullover",
    "roll neck": "pullover",
    "knit": "pullover",
    "tunic": "dress",
    "maxi": "dress",
    "midi": "dress",
    "kaftan": "dress",
    "polo": "t-shirt, shirt",
    "tank top": "t-shirt",
    "camisole": "t-shirt",
    "crop top": "t-shirt",
    "flannel": "shirt",
    "dress shirt": "shirt",
    "overshirt": "shirt",
    "wellington": "ankle boot",
    "welly": "ankle boot",
    "wellies": "ankle boot",
    "combat boot": "ankle boot",
    "hiking boot": "ankle boot",
    "mule": "sandal",
    "espadrille": "sandal",
    "slipper": "sandal",
    # colour names -> catalog colours
    "navy blue": "blue",
    "midnight blue": "blue",
    "turquoise": "blue",
    "aqua": "blue",
    "cyan": "blue",
    "cornflower": "blue",
    "oxblood": "red",
    "rust": "orange",
    "amber": "orange",
    "eggshell": "white",
    "graphite": "grey",
    "pewter": "grey",
    "gunmetal": "grey",
    "taupe": "brown",
    "khaki": "brown",
    "bronze": "brown",
    "jade": "green",
    "bottle green": "green",
    "khaki green": "green",
}


def seed(apps, schema_editor):
    synonym = apps.get_model("search", "Synonym")
    rows = [synonym(term=t, targets=v) for t, v in ONE_WAY.items()]
    synonym.objects.bulk_create(rows, ignore_conflicts=True)


def unseed(apps, schema_editor):
    synonym = apps.get_model("search", "Synonym")
    synonym.objects.filter(term__in=ONE_WAY).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0005_synonym_intents"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
