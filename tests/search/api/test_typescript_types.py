"""The API contract for TypeScript integrators: types generated from the live schema
(``openapi-typescript``, pinned in package.json) type-check the calls in ``client.ts``, one per
search mode plus errors, with ``tsc --noEmit --strict``. A field the schema loses or renames
fails the check; so do types that degrade to ``any`` (``client.ts``'s ``@ts-expect-error``
lines). Node.js and the packages come from ``scripts/bootstrap.sh test`` (npm ci)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BIN = ROOT / "node_modules" / ".bin"
CLIENT = Path(__file__).with_name("client.ts")
# openapi-typescript's default makes every field with a default required, request bodies
# included (a photo search would have to send sort, offset...); the server fills defaults in.
GENERATE = ["--default-non-nullable", "false"]
TSC = ["--noEmit", "--strict", "--target", "es2022", "--lib", "es2022,dom"]


def node_tool(name: str) -> str:
    path = BIN / name
    if not path.exists() or not shutil.which("node"):
        raise RuntimeError(f"{name} missing: run scripts/bootstrap.sh test (npm ci).")
    return str(path)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_generated_typescript_types_check_every_mode(schema_file, tmp_path):
    generated = run(
        node_tool("openapi-typescript"), str(schema_file), "-o", "api.d.ts", *GENERATE, cwd=tmp_path
    )
    assert generated.returncode == 0, generated.stderr
    shutil.copy(CLIENT, tmp_path / "client.ts")
    checked = run(node_tool("tsc"), *TSC, "client.ts", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
