"""The distribution installs one import namespace, ``evbench.*``, and no generic top-level names."""

from __future__ import annotations

import subprocess
import sys


def test_evbench_imports_and_no_generic_top_level_modules(tmp_path) -> None:
    # Run outside the repository, so only what is installed can be imported.
    code = (
        "import importlib.util, evbench, evbench.harness, evbench.methods, evbench.reports, evbench.bench\n"
        "print(sorted(n for n in ('harness', 'methods', 'reports', 'bench') if importlib.util.find_spec(n)))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_data_is_inside_the_package() -> None:
    from evbench.harness.devices.modeled import VALIDATION_PATH

    assert VALIDATION_PATH.is_file()
    assert "evbench" in VALIDATION_PATH.parts or VALIDATION_PATH.parent.name == "devices"


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists packages explicitly (package-dir mapping): a new subpackage must be added there."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {"evbench"}
    for name, folder in cfg["package-dir"].items():
        if name == "evbench":
            continue
        for init in (root / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(root / folder).parts
            found.add(".".join((name, *rel)))
    assert found == set(cfg["packages"])
