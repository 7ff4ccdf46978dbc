"""Measure search quality through the query service, trained model vs an untrained floor.

Always on a throwaway PostgreSQL + Redis + media folder (the command re-runs itself as
``python -m search.benchmarks evaluate_search ...``), so a real catalog is untouched. The
measuring is ``search.benchmarks.quality``.
"""

import json
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from search.benchmarks import harness, look, quality, suites
from search.embeddings import ModelSpec
from search.embeddings.baseline import untrained_like

DEMO_DIR = Path(settings.BASE_DIR) / "search" / "embeddings" / "weights" / "shop-clip-demo"


class Command(BaseCommand):
    help = "Evaluate text, photo and hybrid search quality on a held-out demo catalog."

    def add_arguments(self, parser):
        parser.add_argument("--model", default="shop-clip-demo")
        parser.add_argument("--pretrained", default=f"local-dir:{DEMO_DIR}")
        parser.add_argument(
            "--per-pair",
            type=int,
            default=10,
            help="items per (colour, category) pair: 10 -> 1,100 products",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--photo-queries", type=int, default=200)
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--no-baseline", action="store_true")
        parser.add_argument(
            "--no-suites", action="store_true", help="skip the query suites (queries/*.json)"
        )
        parser.add_argument(
            "--suites",
            default="",
            help="comma-separated suites to run, e.g. 'intent,category,nomatch' (default: all)",
        )
        parser.add_argument(
            "--suite-parts",
            choices=["both", *suites.PARTS],
            default="both",
            help="tune on 'tuning' alone; the held-out part is for the final table",
        )
        parser.add_argument("--json", dest="json_path", default=None)
        parser.add_argument(
            "--look",
            action="store_true",
            help="only shop the look: shoppers' photos and collages, before/after auto-crop",
        )
        parser.add_argument("--look-queries", type=int, default=60)
        parser.add_argument("--look-collages", type=int, default=30)
        parser.add_argument(
            "--look-busy",
            type=int,
            default=30,
            help="busy scenes: touching/overlapping items, textured backgrounds",
        )
        parser.add_argument(
            "--look-detectors",
            default="foreground,trained",
            help="comma-separated DETECTOR values measured on collages and busy scenes",
        )
        parser.add_argument(
            "--look-no-photos",
            action="store_true",
            help="skip the single-item photos (only collages and busy scenes)",
        )

    def handle(self, *args, **o):
        names = {n.strip() for n in o["suites"].split(",") if n.strip()}
        unknown = names - set(suites.suites_load())
        if unknown:
            known = ", ".join(sorted(suites.suites_load()))
            raise CommandError(f"no such suite: {', '.join(sorted(unknown))} (known: {known})")
        if not harness.ensure_throwaway("evaluate_search"):
            return
        call_command("migrate", verbosity=0)  # a throwaway database starts empty
        quality.catalog_ensure(per_pair=o["per_pair"], seed=o["seed"])
        trained = ModelSpec(o["model"], o["pretrained"])
        if o["look"]:
            return self.look(trained, o)
        with tempfile.TemporaryDirectory(prefix="untrained-") as tmp:
            specs = [("trained", trained)]
            if not o["no_baseline"]:
                specs.append(("untrained", untrained_like(trained, Path(tmp), seed=o["seed"])))
            report = quality.compare(
                specs,
                k=o["k"],
                photo_queries=o["photo_queries"],
                suites=not o["no_suites"],
                suite_names=names,
                suite_parts=(suites.PARTS if o["suite_parts"] == "both" else (o["suite_parts"],)),
            )
        self.stdout.write(quality.report_table(report))
        if o["json_path"]:
            Path(o["json_path"]).write_text(json.dumps(report, indent=2) + "\n")
            self.stdout.write(f"wrote {o['json_path']}")

    def look(self, spec: ModelSpec, o: dict) -> None:
        quality.index_with(spec)
        reports = {
            f"{label} ({seed})": look.look_evaluate(
                seed=seed,
                queries=o["look_queries"],
                collages=o["look_collages"],
                busy=o["look_busy"],
                k=o["k"],
                detectors=[d.strip() for d in o["look_detectors"].split(",") if d.strip()],
                degradations=not o["look_no_photos"],
            )
            for label, seed in (("tuning", look.TUNING_SEED), ("held-out", look.HELD_OUT_SEED))
        }
        self.stdout.write(look.look_table(reports))
        if o["json_path"]:
            Path(o["json_path"]).write_text(json.dumps(reports, indent=2) + "\n")
