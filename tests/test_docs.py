"""The README stays true: every environment variable is documented, the commands exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_environment_variable_is_documented():
    names = set()
    for path in (ROOT / "config" / "settings").glob("*.py"):
        names |= set(re.findall(r'env(?:\.\w+)?\("([A-Z_]+)"', path.read_text()))
    for path in (ROOT / "scripts").glob("*.sh"):
        names |= set(re.findall(r"\$\{([A-Z_]+)[:}]", path.read_text())) - {"BASH_SOURCE"}
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert not missing, f"undocumented in README: {missing}"


def test_the_two_commands_are_documented_and_ci_runs_the_test_command():
    assert "bash scripts/run.sh" in README and "bash scripts/test.sh" in README
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
