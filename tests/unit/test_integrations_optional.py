"""The host libraries are optional extras: deadletter imports and runs without them, and
nothing in deadletter depends on deadletter.integrations."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "deadletter"

# Run in a fresh interpreter where the host libraries cannot be imported (a None entry in
# sys.modules makes `import` fail as if the package were not installed).
WITHOUT_HOSTS = """
import sys
for name in ("celery", "kombu", "rq", "dramatiq", "redis", "pika"):
    sys.modules[name] = None
import deadletter, deadletter.app, deadletter.cli, deadletter.api.app
import deadletter.integrations, deadletter.integrations.core, deadletter.integrations.spool
for host, extra in (("celery", "celery"), ("rq", "rq"), ("dramatiq", "dramatiq")):
    try:
        __import__(f"deadletter.integrations.{host}")
    except ImportError as exc:
        assert f"deadletter[{extra}]" in str(exc), exc
    else:
        raise AssertionError(f"deadletter.integrations.{host} imported without its library")
print("ok")
"""


def test_deadletter_imports_without_any_host_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_HOSTS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_nothing_outside_integrations_imports_it() -> None:
    imports = re.compile(r"^\s*(from|import) deadletter\.integrations\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] != "integrations" and imports.search(path.read_text())
    ]
    assert offenders == []


# `deadletter import rq` where RQ is not installed.
IMPORT_WITHOUT_RQ = """
import sys
sys.modules["rq"] = None
sys.argv = ["deadletter", "import", "rq", "--queue", "default"]
from deadletter.cli import main
main()
"""


def test_an_import_without_its_host_library_names_the_extra(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_RQ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "DEADLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'dl.db'}"},
    )
    assert done.returncode != 0 and "deadletter[rq]" in done.stderr, done.stderr
    assert not (tmp_path / "dl.db").exists()  # refused before opening anything
