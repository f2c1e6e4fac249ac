"""The installable package holds every module and file Poise needs: the image installs
it (`pip install .`, not editable), where a module left out of the wheel is a `poise`
that cannot start. Built offline, from a copy of the sources."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("poise", "collectors", "metrics", "dashboard", "reports")
DATA = ("poise/py.typed", "poise/templates/poise.yaml", "poise/warehouse/migrations/script.py.mako")


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "-w", str(tmp_path / "out"), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "absent from the `packages` configuration" not in built.stderr
    (wheel,) = (tmp_path / "out").glob("poise-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        members = set(archive.namelist())
        (metadata,) = [name for name in members if name.endswith(".dist-info/METADATA")]
        headers = email.message_from_bytes(archive.read(metadata))
    modules = {
        path.relative_to(source).as_posix()
        for package in PACKAGES
        for path in (source / package).rglob("*.py")
    }
    assert "poise/commands/metrics.py" in modules
    assert modules - members == set()
    assert set(DATA) - members == set()
    assert headers["License-Expression"] == "Apache-2.0"
    assert not [name for name in members if name.startswith(("tests/", "pages/", "bench/"))]
