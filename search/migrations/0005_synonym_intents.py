from django.db import migrations, models

# What shoppers say a product is for (an admin edits these under Search -> Synonyms, "intent"
# ticked). Targets are the demo catalog's categories, the likeliest first: the first is what
# the vector leg looks for, all of them are boosted. When the query names a product too, an
# intent narrows to it ("winter boots") or yields ("gym bag"), see search.query_understanding.
_COLD = "coat, pullover, ankle boot"
_HOT = "t-shirt, sandal, dress"
_RAIN = "coat, ankle boot"
_SPORT = "sneaker, t-shirt, trousers"
_FORMAL = "shirt, trousers, dress"
_OCCASION = "dress, shirt"
INTENTS = {
    # cold weather and the season
    "winter": _COLD,
    "wintry": _COLD,
    "cold": _COLD,
    "freezing": _COLD,
    "frosty": _COLD,
    "icy": _COLD,
    "snowy": _COLD,
    "ski": _COLD,
    "autumn": _COLD,
    "fall": _COLD,
    "warm": "coat, pullover",
    "warmth": "coat, pullover",
    "chilly": "coat, pullover",
    "cosy": "pullover, coat",
    "cozy": "pullover, coat",
    "christmas": "pullover, dress",
    # hot weather and holidays
    "summer": _HOT,
    "summery": _HOT,
    "hot": _HOT,
    "heat": _HOT,
    "heatwave": _HOT,
    "sunny": _HOT,
    "beach": "sandal, t-shirt, dress",
    "seaside": "sandal, t-shirt, dress",
    "pool": "sandal, t-shirt",
    "poolside": "sandal, t-shirt",
    "holiday": "sandal, t-shirt, dress",
    "vacation": "sandal, t-shirt, dress",
    "tropical": _HOT,
    # rain and wind
    "rain": _RAIN,
    "rainy": _RAIN,
    "wet": _RAIN,
    "waterproof": _RAIN,
    "storm": _RAIN,
    "stormy": _RAIN,
    "windy": "coat",
    "wind": "coat",
    # carrying things
    "carry": "bag",
    "laptop": "bag",
    "computer": "bag",
    "grocery": "bag",
    "shopping": "bag",
    "book": "bag",
    "travel": "bag",
    "travelling": "bag",
    "traveling": "bag",
    "trip": "bag",
    "commute": "bag",
    "commuting": "bag",
    "wallet": "bag",
    "carry-on": "bag",
    # sport
    "running": "sneaker",
    "run": "sneaker",
    "jogging": "sneaker",
    "jog": "sneaker",
    "marathon": "sneaker",
    "basketball": "sneaker",
    "tennis": "sneaker, t-shirt",
    "gym": _SPORT,
    "workout": _SPORT,
    "exercise": _SPORT,
    "fitness": _SPORT,
    "training": _SPORT,
    "sport": _SPORT,
    "sporty": _SPORT,
    "athletic": _SPORT,
    "yoga": "trousers, t-shirt",
    "hiking": "ankle boot, coat",
    "hike": "ankle boot, coat",
    "walking": "sneaker, ankle boot",
    # work and formal occasions
    "office": _FORMAL,
    "work": _FORMAL,
    "business": "shirt, trousers, coat",
    "formal": _FORMAL,
    "smart": _FORMAL,
    "interview": _FORMAL,
    "meeting": "shirt, trousers",
    "professional": "shirt, trousers",
    "black tie": _OCCASION,
    # going out
    "party": _OCCASION,
    "wedding": _OCCASION,
    "wedding guest": _OCCASION,
    "evening": "dress",
    "date": _OCCASION,
    "date night": _OCCASION,
    "night out": _OCCASION,
    "dinner": _OCCASION,
    "cocktail": "dress",
    "prom": "dress",
    "gala": "dress",
    "graduation": _OCCASION,
    "dancing": "dress",
    "clubbing": "dress",
    # at home, at ease
    "casual": "t-shirt, sneaker, trousers",
    "comfy": "pullover, trousers",
    "lounge": "pullover, trousers",
    "lounging": "pullover, trousers",
}
# Product words missing from 0003 ("bottoms" is trousers), and phrases an intent word must not
# split ("hot pink" is a shade, not hot weather).
ONE_WAY = {
    "bottom": "trousers",
    "outerwear": "coat",
    "luggage": "bag",
    "suitcase": "bag",
    "sweatpant": "trousers",
    "hot pink": "pink",
}


def seed(apps, schema_editor):
    synonym = apps.get_model("search", "Synonym")
    rows = [synonym(term=t, targets=v, intent=True) for t, v in INTENTS.items()]
    rows += [synonym(term=t, targets=v) for t, v in ONE_WAY.items()]
    synonym.objects.bulk_create(rows, ignore_conflicts=True)


def unseed(apps, schema_editor):
    synonym = apps.get_model("search", "Synonym")
    synonym.objects.filter(term__in=[*INTENTS, *ONE_WAY]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0004_model_calibration"),
    ]

    operations = [
        migrations.AddField(
            model_name="synonym",
            name="intent",
            field=models.BooleanField(
                default=False,
                help_text="The term says what it is for ('winter', 'laptop'), not what it is: "
                "a product named in the same query wins over it ('gym bag' finds bags)",
            ),
        ),
        migrations.RunPython(seed, unseed),
    ]
