"""Mutation score of the core search modules, on the fast tests (issue 15, "Measure test strength").

mutmut 3 copies the tree to ``mutants/`` and drives pytest its own way, which fits badly with a
test session that starts its own PostgreSQL/Redis (``tests/conftest.py``); this small tester
does the same job with ``ast``:

1. Each target module is parsed; every node a mutation operator applies to gives one mutant:
   comparison flipped (``==``/``!=``, ``<``/``>=``, ``>``/``<=``, ``in``/``not in``,
   ``is``/``is not``), ``and``/``or`` swapped, ``+``/``-`` and ``*``/``/`` swapped,
   ``True``/``False`` swapped, an int/float constant + 1, a ``not`` removed, a returned value
   replaced by ``None``. Docstrings and annotations are not mutated (equivalent by
   construction). The mutated module is written back with ``ast.unparse``.
2. Mutants are sampled (``--per-module``, fixed ``--seed``) so a run fits on a small machine.
3. Each mutant is applied IN A COPY of the repository (tracked and untracked-but-not-ignored
   files of the working tree, ``.venv`` symlinked), never in the checkout itself; the module's
   fast tests run there with ``-x -q`` and a timeout. A failing (or timed-out) run kills the
   mutant; a passing one lets it survive. ``--jobs`` copies run side by side; each test
   session starts its own throwaway services, so they do not share a database.
4. Before any mutant, the unmutated copy must pass the same tests (else the score means
   nothing). The survivors are printed and written, with the score per module, to ``--out``
   (JSON); ``--only FILE`` re-runs just the mutants listed in an earlier JSON (the survivors,
   after tests were strengthened: adding tests never revives a killed mutant).

Usage::

    .venv/bin/python scripts/mutation.py --per-module 18 --jobs 2 --out /tmp/mut-before.json
    .venv/bin/python scripts/mutation.py --only /tmp/mut-before.json --out /tmp/mut-after.json
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Target module -> the fast tests that exercise it.
TARGETS: dict[str, list[str]] = {
    "search/services/query.py": [
        "tests/search/test_search_modes.py",
        "tests/search/test_search_inputs.py",
        "tests/search/test_text_fusion.py",
        "tests/search/test_keyword_search.py",
        "tests/search/test_modifier_understanding.py",
        "tests/search/api/test_sort_and_totals.py",
        "tests/search/services/test_embedding_models.py",
    ],
    "search/services/fusion.py": [
        "tests/search/test_fusion.py",
        "tests/search/test_text_fusion.py",
    ],
    "search/vectorstore/keyword.py": [
        "tests/search/test_keyword_search.py",
        "tests/search/test_text_fusion.py",
        # The suggest endpoint's answers (not the page-wiring test, which is the template's).
        "tests/search/test_suggest.py::test_a_prefix_completes_categories_then_titles",
        "tests/search/test_suggest.py::test_synonyms_are_offered",
        "tests/search/test_suggest.py::test_a_typo_gets_the_nearest_word",
        "tests/search/test_suggest.py::test_odd_input_is_answered",
        "tests/search/vectorstore/test_price_quantile.py",
    ],
    "search/services/indexing.py": [
        "tests/search/services/test_indexing.py",
        "tests/search/test_selectors.py",
        "tests/search/services/test_embedding_models.py",
    ],
    "search/services/embedding_models.py": [
        "tests/search/services/test_embedding_models.py",
        "tests/search/services/test_indexing.py",
        # The admin's "switch search to this model" action and its messages.
        "tests/search/test_selectors.py",
    ],
    "search/vectorstore/pgvector.py": [
        "tests/search/vectorstore",
        "tests/search/test_text_fusion.py",
    ],
    "search/filters.py": [
        "tests/search/test_request_building.py",
        "tests/search/vectorstore",
    ],
    "search/query_terms.py": [
        "tests/search/test_request_building.py",
        "tests/search/test_search_inputs.py",
        "tests/search/api/test_sort_and_totals.py",
    ],
}

_CMP_SWAP = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BIN_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside docstrings and annotations: mutating them changes nothing."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                mark(body[0])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for a in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                mark(a.annotation)
            for a in (node.args.vararg, node.args.kwarg):
                if a is not None:
                    mark(a.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.ImportFrom):
            mark(node)
    return skip


def _candidates(tree: ast.AST) -> list[tuple[int, int, str]]:
    """(node index in ast.walk order, sub-index, description) for every possible mutant."""
    skip = _skipped_nodes(tree)
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                if type(op) in _CMP_SWAP:
                    new = _CMP_SWAP[type(op)].__name__
                    out.append((i, j, f"L{line}: {type(op).__name__} -> {new}"))
        elif isinstance(node, ast.BoolOp):
            new = "Or" if isinstance(node.op, ast.And) else "And"
            out.append((i, 0, f"L{line}: {type(node.op).__name__} -> {new}"))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN_SWAP:
            new = _BIN_SWAP[type(node.op)].__name__
            out.append((i, 0, f"L{line}: {type(node.op).__name__} -> {new}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append((i, 0, f"L{line}: {node.value} -> {not node.value}"))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            out.append((i, 0, f"L{line}: {node.value!r} -> {node.value + 1!r}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append((i, 0, f"L{line}: remove not"))
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                out.append((i, 0, f"L{line}: return {ast.unparse(node.value)[:40]} -> None"))
    return out


def _mutate(source: str, index: int, sub: int) -> str:
    tree = ast.parse(source)
    for i, node in enumerate(ast.walk(tree)):
        if i != index:
            continue
        if isinstance(node, ast.Compare):
            node.ops[sub] = _CMP_SWAP[type(node.ops[sub])]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.BinOp):
            node.op = _BIN_SWAP[type(node.op)]()
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            node.value = not node.value
        elif isinstance(node, ast.Constant):
            node.value = node.value + 1
        elif isinstance(node, ast.UnaryOp):
            # Replace the operand in its parent: simplest through a wrapper transform.
            return ast.unparse(_RemoveNot(node).visit(tree))
        elif isinstance(node, ast.Return):
            node.value = ast.Constant(None)
        return ast.unparse(tree)
    raise IndexError(index)


class _RemoveNot(ast.NodeTransformer):
    def __init__(self, target: ast.UnaryOp):
        self.target = target

    def visit_UnaryOp(self, node):  # noqa: N802
        if node is self.target:
            return self.generic_visit(copy.copy(node)).operand
        return self.generic_visit(node)


def _make_copy(dest: Path, rev: str | None, overlay: list[str]) -> None:
    """The working tree's files, or those of commit ``rev`` plus the ``overlay`` paths from the
    working tree (tests being written): with ``rev`` the mutants of a file that someone is
    editing stay the same between a "before" and an "after" run."""
    dest.mkdir(parents=True)
    if rev:
        archive = subprocess.run(
            ["git", "archive", rev], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        names = [os.fsencode(p) for p in overlay]
    else:
        names = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.split(b"\0")
    for name in filter(None, names):
        src = ROOT / os.fsdecode(name)
        if src.is_file() and not src.is_symlink():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    (dest / ".venv").symlink_to(ROOT / ".venv")


_running: set[subprocess.Popen] = set()


def _stop(proc: subprocess.Popen) -> None:
    """Interrupt a test session the way Ctrl-C does, so its fixtures stop the PostgreSQL,
    Redis and worker processes they started (a plain kill would leave them running)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _run_tests(workdir: Path, tests: list[str], timeout: float) -> tuple[bool, str]:
    """(passed, last line of output)."""
    cmd = [str(workdir / ".venv/bin/python"), "-m", "pytest", *tests, "-x", "-q"]
    cmd += ["-p", "no:cacheprovider", "-o", "addopts="]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    _running.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return False, "timeout"
    finally:
        _running.discard(proc)
    tail = (out.strip().splitlines() or [""])[-1]
    return proc.returncode == 0, tail


def _terminated(*_) -> None:
    for proc in list(_running):
        _stop(proc)
    sys.exit(143)


def _write(path: Path, seed: int, results: dict) -> None:
    for r in results.values():
        r["score"] = round(r["killed"] / r["sampled"], 3) if r["sampled"] else None
    path.write_text(json.dumps({"seed": seed, "modules": results}, indent=1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-module", type=int, default=60)
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--timeout", type=float, default=180)
    p.add_argument("--module", action="append", help="only these target modules")
    p.add_argument("--only", type=Path, help="re-run the survivors of an earlier --out JSON")
    p.add_argument("--out", type=Path)
    p.add_argument("--rev", help="mutate the files of this commit (default: the working tree)")
    p.add_argument(
        "--overlay",
        action="append",
        default=[],
        help="with --rev: a working-tree file copied over the commit's (a new test)",
    )
    p.add_argument(
        "--tests",
        action="append",
        default=[],
        help="a test file run for every module, besides its own list (a new test file)",
    )
    p.add_argument(
        "--drop",
        action="append",
        default=[],
        help="a test file left out of the copies and the test lists (a 'before' run)",
    )
    args = p.parse_args()

    for target, tests in TARGETS.items():
        TARGETS[target] = [t for t in tests if t not in args.drop] + args.tests
    # A timeout or kill -TERM still runs the ``finally`` below: no copy is left behind (the
    # checkout itself is never written to).
    signal.signal(signal.SIGTERM, _terminated)
    base = Path(tempfile.mkdtemp(prefix="mutation-"))
    copies = []
    try:  # the copies are a snapshot: the checkout may change while this runs
        for k in range(args.jobs):
            d = base / f"wt{k}"
            _make_copy(d, args.rev, args.overlay)
            for dropped in args.drop:
                (d / dropped).unlink(missing_ok=True)
            copies.append(d)
        previous = json.loads(args.only.read_text()) if args.only else None
        modules = args.module or list(TARGETS)
        plan: list[tuple[str, int, int, str]] = []
        totals: dict[str, int] = {}
        for module in modules:
            source = (copies[0] / module).read_text()
            cands = _candidates(ast.parse(source))
            totals[module] = len(cands)
            if previous is not None:
                # Same node, same operator: a module edited since would not match.
                wanted = {tuple(m) for m in previous["modules"][module]["survivors"]}
                chosen = [c for c in cands if c in wanted]
                if len(chosen) != len(wanted):
                    print(f"{module}: {len(wanted) - len(chosen)} survivors no longer match")
            else:
                chosen = sorted(
                    random.Random(f"{args.seed}:{module}").sample(
                        cands, min(args.per_module, len(cands))
                    )
                )
            plan += [(module, i, j, d) for i, j, d in chosen]
        print(f"{len(plan)} mutants to run ({totals} generated in all)", flush=True)
        # The unmutated copy must pass every module's tests first.
        union = sorted({t for m in modules for t in TARGETS[m]})
        ok, tail = _run_tests(copies[0], union, args.timeout)
        if not ok:
            print(f"BASELINE FAILS: {tail}", file=sys.stderr)
            return 2
        print("baseline passes", flush=True)

        free = list(copies)
        results: dict[str, dict] = {
            m: {"generated": totals[m], "sampled": 0, "killed": 0, "survivors": []} for m in modules
        }

        def one(item):
            module, i, j, desc = item
            wd = free.pop()
            try:
                original = (wd / module).read_text()
                try:
                    mutated = _mutate(original, i, j)
                except Exception as e:  # ast.unparse cannot write it: no mutant, no score
                    return item, None, f"invalid: {e}"
                (wd / module).write_text(mutated)
                start = time.monotonic()
                try:
                    ok, tail = _run_tests(wd, TARGETS[module], args.timeout)
                finally:  # the copy is restored whatever happens to the run
                    (wd / module).write_text(original)
                return item, ok, f"{tail} ({time.monotonic() - start:.0f}s)"
            finally:
                free.append(wd)

        with ThreadPoolExecutor(args.jobs) as pool:
            for (module, i, j, desc), survived, tail in pool.map(one, plan):
                r = results[module]
                if survived is None:
                    r.setdefault("invalid", []).append([i, j, desc])
                    print(f"invalid  {module} {desc} | {tail}", flush=True)
                    continue
                r["sampled"] += 1
                if survived:
                    r["survivors"].append([i, j, desc])
                else:
                    r["killed"] += 1
                state = "SURVIVED" if survived else "killed"
                print(f"{state:8} {module} {desc} | {tail}", flush=True)
                if args.out:  # after each mutant: a run cut short still leaves its results
                    _write(args.out, args.seed, results)

        print("\nmodule                                  generated sampled killed score")
        for module, r in results.items():
            score = r["killed"] / r["sampled"] if r["sampled"] else 1.0
            line = f"{module:40} {r['generated']:9} {r['sampled']:7} {r['killed']:6} "
            print(line + f"{score:.0%}")
            for _, _, desc in r["survivors"]:
                print(f"    survivor: {desc}")
        if args.out:
            _write(args.out, args.seed, results)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
