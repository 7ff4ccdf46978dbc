"""The import rules of the layout (README "Architecture"), checked on the source itself."""

import ast
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def test_shop_imports_search_only_through_catalog_sync_in_services():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imports(path) if m.split(".")[0] == "search"
        )
        for path in _modules("shop")
    }
    offenders = {path: mods for path, mods in offenders.items() if mods}
    assert offenders == {"shop/services.py": ["search"]}, offenders
    assert "from search import catalog_sync" in (ROOT / "shop/services.py").read_text()


def test_only_the_encoder_package_imports_torch_or_open_clip():
    heavy = {"torch", "open_clip", "torchvision", "timm"}
    offenders = {
        str(path.relative_to(ROOT))
        for path in _modules("search", "shop", "config")
        if "search/embeddings/" not in str(path)
        and any(m.split(".")[0] in heavy for m in _imports(path))
    }
    assert offenders == set()


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # Refactoring models (the abstract Embedding base) must not need a schema change.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
