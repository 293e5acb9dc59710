"""`python -m build` gives a wheel that, installed on its own (not the editable checkout), lists and loads the zoo
teachers and answers `rl-distill --version`.

The wheel is built offline (``--no-isolation``: the dev extra's setuptools and build) from a copy of the sources, so
the checkout gets no build/ or egg-info, and installed with ``--no-deps`` into a bare folder that goes first on
PYTHONPATH; its dependencies come from this venv, which has them pinned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, sys
from importlib.metadata import version
from pathlib import Path

import rl_distill
from rl_distill.teachers import ZOO_DIR, load_teacher, shipped_ids

site = Path(sys.argv[1]).resolve()
assert site in Path(rl_distill.__file__).resolve().parents, rl_distill.__file__
loaded = {tid: load_teacher(tid).num_params for tid in shipped_ids()}
print(json.dumps({"version": version("rl-distill"), "zoo": str(ZOO_DIR), "params": loaded}))
"""


def _run(*argv: str, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{' '.join(argv)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_the_wheel_alone_lists_and_loads_the_zoo(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "rl_distill", src / "rl_distill", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src)
    _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(src))
    (wheel,) = (tmp_path / "dist").glob("rl_distill-*.whl")
    site = tmp_path / "site"
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel))

    env = {**os.environ, "PYTHONPATH": str(site)}
    r = _run(sys.executable, "-c", CHECK, str(site), env=env, cwd=tmp_path)
    got = json.loads(r.stdout)
    pyproject_version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert got["version"] == pyproject_version and Path(got["zoo"]).is_relative_to(site)
    shipped = sorted(p.stem for p in (ROOT / "rl_distill" / "zoo").glob("*.json"))
    assert sorted(got["params"]) == shipped and all(n > 0 for n in got["params"].values())

    script = site / "bin" / "rl-distill"  # the wheel's console script
    assert _run(str(script), "--version", env=env, cwd=tmp_path).stdout == f"rl-distill {pyproject_version}\n"
    listed = json.loads(_run(str(script), "teachers", "list", "--json", env=env, cwd=tmp_path).stdout)
    assert sorted(t["id"] for t in listed) == shipped
