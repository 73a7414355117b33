"""Type-checks Grafana dashboard JSON against Grafana's published TypeScript types.

``install`` puts ``@grafana/schema`` and ``typescript`` (pinned, with npm) under
``<install root>/tools/grafana-schema``, and the Prometheus query type published in
``@grafana/prometheus`` (its tarball only, ``npm pack``: none of its UI dependencies).
``check`` declares each dashboard's JSON as ``CheckedDashboard`` (``grafana/dashboard.ts``)
and runs ``tsc --strict``: an unknown field, a missing required one or a wrong type fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from localinfra.settings import InfraConfig
from localinfra.tools import tools_dir

GRAFANA_VERSION = "12.4.0"
TYPESCRIPT_VERSION = "5.9.3"
TYPES = Path(__file__).resolve().parent / "grafana" / "dashboard.ts"
QUERY_TYPES = "package/dist/types/dataquery.d.ts"


def checker_dir(config: InfraConfig | None = None) -> Path:
    """Where the packages are installed."""
    return tools_dir(config) / "grafana-schema"


def install(config: InfraConfig | None = None) -> Path:
    """Install the pinned packages unless they are there; returns their directory."""
    root = checker_dir(config)
    stamp, version = root / ".version", f"@grafana/schema {GRAFANA_VERSION}, typescript {TYPESCRIPT_VERSION}"
    if stamp.exists() and stamp.read_text() == version:
        return root
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise RuntimeError("checking the dashboards needs Node.js 18+ and npm: install them from your distribution")
    print(f"grafana-schema: installing {version} with npm (first run)...", flush=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    # Installed aside and moved in whole: a concurrent install or an interrupted one leaves no half tree.
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".grafana-schema-") as staging:
        work = Path(staging) / "root"
        work.mkdir(mode=0o755)
        (work / "package.json").write_text(json.dumps({"private": True}))
        _run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--save-exact",
              f"@grafana/schema@{GRAFANA_VERSION}", f"typescript@{TYPESCRIPT_VERSION}"], work)
        _run(["npm", "pack", "--silent", f"@grafana/prometheus@{GRAFANA_VERSION}"], work)
        tarball = next(work.glob("grafana-prometheus-*.tgz"))
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(QUERY_TYPES)
            if member is None:
                raise RuntimeError(f"@grafana/prometheus {GRAFANA_VERSION} has no {QUERY_TYPES}")
            (work / "prometheus").mkdir()
            (work / "prometheus" / "dataquery.d.ts").write_bytes(member.read())
        tarball.unlink()
        (work / stamp.name).write_text(version)
        shutil.rmtree(root, ignore_errors=True)
        try:
            work.rename(root)
        except OSError:
            if not stamp.exists():  # not another install that finished first
                raise
    return root


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return result


def check(dashboards: list[Path], config: InfraConfig | None = None) -> str:
    """tsc's messages about ``dashboards`` (JSON files); empty when each one is a ``CheckedDashboard``."""
    root = install(config)
    work = root / "check"
    shutil.rmtree(work, ignore_errors=True)
    (work / "prometheus").mkdir(parents=True)
    shutil.copy(TYPES, work / "dashboard.ts")
    shutil.copy(root / "prometheus" / "dataquery.d.ts", work / "prometheus" / "dataquery.d.ts")
    files = []
    for path in dashboards:
        source = work / f"{path.stem}.ts"
        body = json.dumps(json.loads(path.read_text()), indent=1, ensure_ascii=False)
        source.write_text(f"import type {{ CheckedDashboard }} from './dashboard';\n\nexport const dashboard: CheckedDashboard = {body};\n")
        files.append(source.name)
    options = {"strict": True, "noEmit": True, "target": "es2022", "module": "esnext", "moduleResolution": "bundler",
               "skipLibCheck": True}  # the query type's file imports @grafana/data (not installed): its own checks are skipped
    (work / "tsconfig.json").write_text(json.dumps({"compilerOptions": options, "files": ["dashboard.ts", *files]}))
    tsc = root / "node_modules" / "typescript" / "bin" / "tsc"
    result = subprocess.run(["node", str(tsc), "-p", str(work / "tsconfig.json"), "--pretty", "false"], cwd=work, capture_output=True, text=True)
    if result.returncode != 0 and not result.stdout.strip():
        raise RuntimeError(f"tsc failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()
