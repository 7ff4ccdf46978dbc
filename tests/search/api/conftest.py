"""Fixtures shared by the generated-client contract tests (Python and TypeScript)."""

from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="module")
def schema_file(live_server, tmp_path_factory) -> Path:
    """The OpenAPI schema the running server serves, as a JSON file (what integrators fetch)."""
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    path.write_bytes(httpx.get(f"{live_server.url}/api/schema/?format=json").content)
    return path
