"""The package as a user gets it: the wheel built from this checkout, installed into a fresh virtualenv outside the
checkout, runs a search, evaluates what it found on the embedded data without a network, reads a preset by name,
and starts the app's command line.

Offline and quick: the wheel is built without build isolation (this environment's setuptools) and installed with
``--no-deps --no-index``; the fresh venv sees the dependencies already installed here (torch is large) through a
path file, after its own site-packages, so ``import nasp`` there is the wheel's and never this checkout's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_in_the_wheel_list():
    """pyproject lists the packages by hand (tui/ installs as nasp_tui): a new package folder must be added there."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts).replace("tui", "nasp_tui", 1)
             if p.parts[len(ROOT.parts)] == "tui" else ".".join(p.parent.relative_to(ROOT).parts)
             for p in [*ROOT.glob("nasp/**/__init__.py"), *ROOT.glob("tui/**/__init__.py")]}
    assert found == listed, f"pyproject [tool.setuptools] packages: missing {found - listed}, stale {listed - found}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel of this checkout installed; returns (its bin folder, a work folder)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for pkg in ("nasp", "tui"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp / "wheels"
    import setuptools

    # this environment's setuptools when it reads pyproject's licence form (77+, torch brings a recent one): offline
    offline = int(setuptools.__version__.split(".")[0]) >= 77
    flags = ["--no-build-isolation", "--no-index"] if offline else []
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", *flags, "--no-deps", "-q", "-w", str(wheels), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("nasp_search-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        tops = {n.split("/")[0] for n in zf.namelist()}
    assert tops == {"nasp", "nasp_tui", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, tops

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    # the dependencies of this environment, after the venv's own packages (its nasp is the wheel's)
    (site / "zz_nasp_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr
    work = tmp / "work"
    work.mkdir()
    return env_dir / "bin", work


def env_for(work: Path, bin_dir: Path) -> dict[str, str]:
    # offline: any download would go to a proxy that is not there; a fresh HOME holds no dataset or cache
    proxy = "http://127.0.0.1:9"
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(work), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "NO_COLOR": "1",
            "COLUMNS": "200"}


def start(bin_dir: Path, work: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(bin_dir / args[0]), *args[1:]], cwd=work, env=env_for(work, bin_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{out}\n{err}"
    return out


def test_wheel_installs_searches_and_evaluates_offline(installed):
    bin_dir, work = installed
    from nasp import __version__

    # independent commands run alongside the search
    version = start(bin_dir, work, "nasp", "--version")
    helped = start(bin_dir, work, "nasp-tui", "--help")
    preset = start(bin_dir, work, "nasp", "eval", "--config", "eval-cpu", "genotype=NASP", "--dry-run")

    finish(start(bin_dir, work, "nasp", "run", "data.limit=96", "batch_size=16", "model.channels=4", "model.layers=2",
                 "epochs=1", "threads=1", "name=search"))
    assert (work / "runs" / "search" / "genotype.json").is_file()
    # the search's data (embedded) and the eval-cpu preset come with the run folder; a smaller subset keeps it short
    out = finish(start(bin_dir, work, "nasp", "eval", "genotype=runs/search", "epochs=1", "data.limit=256",
                       "data.test_limit=256", "threads=1", "name=evaluation"))
    assert "test accuracy" in out, out
    config = json.loads((work / "runs" / "evaluation" / "config.json").read_text())
    assert config["data"]["name"] == "embedded" and config["model"]["channels"] == 8  # eval-cpu's network, not the paper's
    assert sorted(p.name for p in (work / "runs").iterdir()) == ["evaluation", "search"]

    line = finish(version).strip()  # the wheel's nasp, not this checkout's
    assert line.startswith(f"nasp {__version__} from {bin_dir.parent}"), line
    assert "C=8, 5 cells" in finish(preset)
    assert "usage: nasp-tui" in finish(helped)


def test_install_instructions_are_honest():
    """nasp-search is not on PyPI: the README and docs/install.md install from the repository or a wheel, give the
    CPU-only torch index, and pyproject names its URLs and points at a page that exists."""
    readme = (ROOT / "README.md").read_text()
    install = (ROOT / "docs" / "install.md").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    cpu = "--index-url https://download.pytorch.org/whl/cpu"
    for text in (readme, install):
        assert not re.search(r'pip install "?nasp-search(\[\w+\])?"?\s*(#|$)', text, re.M)  # as if from PyPI
        assert "pip install ." in text and "git+" in text and cpu in text
    assert "pip wheel" in install and "dist/nasp_search-" in install
    assert "docs/install.md" in pyproject and (ROOT / "docs" / "install.md").is_file()
    urls = tomllib.loads(pyproject)["project"]["urls"]
    assert urls and all(u.startswith("https://") for u in urls.values())
    first_two = [line for line in readme.splitlines() if line.startswith("bash scripts/setup.sh")][:2]
    assert first_two[0].startswith("bash scripts/setup.sh && .venv/bin/nasp run ")
    assert first_two[1].startswith("bash scripts/setup.sh && .venv/bin/python -m pytest ")
