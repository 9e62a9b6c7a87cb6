"""What the product's wheel ships: the platform, not the development tools (no HTTP server, no mount namespaces,
no moto), and no `medallion.commands` of its own (the development tools add those)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What only the development tools may contain: a web server, `unshare --mount`/bind mounts, moto's server.
TOOLING = ("http.server", "HTTPServer", "unshare", "mount --bind", "import moto", "from moto")


@pytest.mark.timeout(300)
def test_the_product_wheel_ships_no_development_tools(tmp_path: Path):
    """`pip wheel . --no-deps` (in a copy of what the wheel is built from, so the checkout stays clean)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("medallion_platform", "infra_pulumi"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = (tmp_path / "dist").glob("medallion_platform-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        sources = {n: zf.read(n).decode() for n in names if n.endswith(".py")}
        (entry_points,) = (zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "medallion_platform/cli/main.py" in names and "medallion_platform/errors.py" in names
    assert not [n for n in names if n.startswith("medallion_devtools") or "standin" in n]
    assert not [(n, word) for n, text in sources.items() for word in TOOLING if word in text]
    assert "medallion.commands" not in entry_points
