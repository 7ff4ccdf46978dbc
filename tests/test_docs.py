"""The README stays true: every environment variable is documented, the commands exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


# Every route by which code reads a variable: env("X"), env.bool("X", ...), os.environ["X"],
# os.environ.get("X"), os.environ.setdefault("X", ...), os.getenv("X"), "X" in os.environ
# (either quote); ${X:-...} / ${X} / $X in shell scripts (``*.sh`` and any file whose first
# line names a shell, such as ``.ci/run``); ${X...} substitutions in docker-compose.yml; ARG X
# in the Dockerfile (``--build-arg``).
_Q = r"""["']"""
_NAME = r"([A-Z][A-Z0-9_]*)"
PY_READS = [
    rf"\benv(?:\.\w+)?\(\s*{_Q}{_NAME}{_Q}",
    rf"\benviron\[\s*{_Q}{_NAME}{_Q}\s*\]",
    rf"\benviron\.(?:get|setdefault|pop)\(\s*{_Q}{_NAME}{_Q}",
    rf"\bgetenv\(\s*{_Q}{_NAME}{_Q}",
    rf"{_Q}{_NAME}{_Q}\s+(?:not\s+)?in\s+(?:os\.)?environ\b",
]
SH_READS = [r"\$\{([A-Z][A-Z0-9_]*)[:}\-]", r"\$([A-Z][A-Z0-9_]*)\b"]
COMPOSE_READS = [r"\$\{([A-Z][A-Z0-9_]*)"]
DOCKERFILE_READS = [r"^\s*ARG\s+([A-Z][A-Z0-9_]*)"]
# Set by the shell or by the scripts themselves for the commands they run, not configuration;
# DJANGO_ALLOW_ASYNC_UNSAFE is set (setdefault) by the browser tests for their own process.
NOT_CONFIGURATION = {
    "BASH_SOURCE",
    "PWD",
    "HOME",
    "PATH",
    "PY",
    "DEMO_DIR",
    "OUT",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}
SKIP_DIRS = {".venv", ".git", "node_modules", ".data"}
# This file names the routes in its own comments and patterns.
SKIP_FILES = {Path(__file__).resolve()}


def _sources(pattern: str):
    for path in ROOT.rglob(pattern):
        if path.resolve() in SKIP_FILES or SKIP_DIRS & set(path.relative_to(ROOT).parts):
            continue
        if path.is_file():
            yield path


def _shell_scripts():
    for path in _sources("*"):
        if path.suffix == ".sh":
            yield path
        elif not path.suffix and path.stat().st_size < 200_000:
            with path.open("rb") as f:
                first = f.readline()
            if first.startswith(b"#!") and re.search(rb"\b(ba|da|z)?sh\b", first):
                yield path


def _found(found: dict[str, set[str]], path: Path, patterns, text: str, minus=()) -> None:
    for pattern in patterns:
        for name in set(re.findall(pattern, text, re.M)) - set(minus):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))


def variables_read() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in _sources("*.py"):
        _found(found, path, PY_READS, path.read_text())
    for path in _shell_scripts():
        text = path.read_text()
        assigned = set(re.findall(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=", text, re.M))
        _found(found, path, SH_READS, text, minus=assigned)
    for path in _sources("docker-compose*.yml"):
        _found(found, path, COMPOSE_READS, path.read_text())
    for path in _sources("Dockerfile*"):
        _found(found, path, DOCKERFILE_READS, path.read_text())
    return {n: where for n, where in found.items() if n not in NOT_CONFIGURATION}


def test_the_scan_sees_every_route(tmp_path):
    """Each route above, in a sample of the code it must find; a pattern that stopped
    matching would let an undocumented variable through."""
    sample = """
x = env("A1"); y = env.bool('A2', default=False); os.environ["A3"]; os.environ.get('A4')
os.environ.setdefault("A5", "1"); os.getenv('A6'); "A7" in os.environ; 'A8' not in environ
from os import environ, getenv; environ.get("A9"); getenv("A10")
"""
    got = {n for pattern in PY_READS for n in re.findall(pattern, sample)}
    assert got == {f"A{i}" for i in range(1, 11)}
    shell = 'B1=1\necho "${B2:-x} ${B3} $B4 $B1"\n'
    got = {n for pattern in SH_READS for n in re.findall(pattern, shell)}
    assert got == {"B1", "B2", "B3", "B4"}  # B1 is then dropped as assigned by the script
    assert re.findall(COMPOSE_READS[0], "a: ${C1:-x}\nb: ${C2}") == ["C1", "C2"]
    assert re.findall(DOCKERFILE_READS[0], 'FROM x\nARG D1=""\n', re.M) == ["D1"]


def test_every_environment_variable_is_documented():
    names = variables_read()
    # The scan itself must see the routes it claims to (one known read per route).
    assert {"CLIP_MODEL", "DJANGO_SETTINGS_MODULE", "DEMO_PRODUCTS", "KEEP_SERVICES"} <= set(names)
    assert {"SECURE_SSL_REDIRECT", "TORCH_INDEX"} <= set(names)  # compose and Dockerfile
    missing = {n: sorted(w) for n, w in sorted(names.items()) if f"`{n}`" not in README}
    assert not missing, f"undocumented in README: {missing}"


def test_the_two_commands_are_documented_and_ci_runs_the_test_command():
    assert "bash scripts/run.sh" in README and "bash scripts/test.sh" in README
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
