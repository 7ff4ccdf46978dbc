"""The README stays true: every environment variable is documented, the commands exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


# Every route by which code reads a variable: env("X"), env.bool("X", ...), os.environ["X"],
# os.environ.get("X"), os.environ.setdefault("X", ...), os.getenv("X"), "X" in os.environ,
# and ${X:-...} / ${X} / $X in shell scripts.
PY_READS = [
    r'\benv(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"',
    r'os\.environ\[\s*"([A-Z][A-Z0-9_]*)"\s*\]',
    r'os\.environ\.(?:get|setdefault|pop)\(\s*"([A-Z][A-Z0-9_]*)"',
    r'os\.getenv\(\s*"([A-Z][A-Z0-9_]*)"',
    r'"([A-Z][A-Z0-9_]*)"\s+(?:not\s+)?in\s+os\.environ',
]
SH_READS = [r"\$\{([A-Z][A-Z0-9_]*)[:}\-]", r"\$([A-Z][A-Z0-9_]*)\b"]
# Set by the shell or by the scripts themselves for the commands they run, not configuration.
NOT_CONFIGURATION = {"BASH_SOURCE", "PWD", "HOME", "PATH", "PY", "DEMO_DIR", "OUT"}
SKIP_DIRS = {".venv", ".git", "node_modules", ".data", "tests"}


def _sources(pattern: str):
    for path in ROOT.rglob(pattern):
        if not SKIP_DIRS & set(path.relative_to(ROOT).parts):
            yield path


def variables_read() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in _sources("*.py"):
        text = path.read_text()
        for pattern in PY_READS:
            for name in re.findall(pattern, text):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for path in _sources("*.sh"):
        text = path.read_text()
        assigned = set(re.findall(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=", text, re.M))
        for pattern in SH_READS:
            for name in set(re.findall(pattern, text)) - assigned:
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return {n: where for n, where in found.items() if n not in NOT_CONFIGURATION}


def test_every_environment_variable_is_documented():
    names = variables_read()
    # The scan itself must see the routes it claims to (one known read per route).
    assert {"CLIP_MODEL", "DJANGO_SETTINGS_MODULE", "DEMO_PRODUCTS", "KEEP_SERVICES"} <= set(names)
    missing = {n: sorted(w) for n, w in sorted(names.items()) if f"`{n}`" not in README}
    assert not missing, f"undocumented in README: {missing}"


def test_the_two_commands_are_documented_and_ci_runs_the_test_command():
    assert "bash scripts/run.sh" in README and "bash scripts/test.sh" in README
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
