from django.core.management.base import BaseCommand, CommandError

from search.embeddings import ModelLoadError
from search.embeddings.registry import configured_spec, get_encoder


class Command(BaseCommand):
    help = "Load the configured CLIP model once and print what it is (exit 1 with advice if not)."

    def handle(self, *args, **options):
        spec = configured_spec()
        try:
            encoder = get_encoder(spec)
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"CLIP model {spec.name!r} weights {spec.pretrained!r}: {encoder.dim} dims on "
            f"{encoder.device} ({encoder.precision}); identity {encoder.key}"
        )
