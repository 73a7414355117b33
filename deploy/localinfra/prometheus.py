"""Prometheus 2.42 and promtool from Debian's ``prometheus`` package, scraping the local pipeline.

``install`` fetches the package (and the JavaScript libraries its classic web UI links
to) with ``apt-get download`` and unpacks it with ``dpkg -x`` into
``<install root>/tools/prometheus``: nothing is installed on the system. The server
evaluates the chart's rule files (``helm/captioning/files/prometheus/*.rules.yml``)
and scrapes each service (and the replicas ``scale`` asked for) and Triton's metrics
port, each target labelled ``pipeline="captioning"`` as the chart's ServiceMonitor labels them. The
targets are a file the server watches: ``provision`` (every ``up``) and ``scale`` rewrite
it, so replicas started since are scraped; ``provision`` also reloads the rules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from localinfra.components import DEPLOY_DIR, Component
from localinfra.process import answers_ok
from localinfra.pipeline import CONSOLE, SERVICE_NAMES, PipelineService
from localinfra.scaling import replica, replicas
from localinfra.settings import InfraConfig
from localinfra.tools import tools_dir

PROMETHEUS_VERSION = "2.42.0"  # Debian 12 (bookworm); any Debian revision of this upstream version
UI_PACKAGES = (  # what the classic web UI's static files link to
    "fonts-glyphicons-halflings", "libjs-bootstrap4", "libjs-d3", "libjs-eonasdan-bootstrap-datetimepicker", "libjs-jquery",
    "libjs-jquery-hotkeys", "libjs-moment", "libjs-moment-timezone", "libjs-mustache", "libjs-popper.js", "libjs-rickshaw",
)
UNUSED = ("usr/share/javascript/moment-timezone/data", "usr/share/doc", "usr/share/man")  # 200+ MB the UI never loads
RULES_DIR = DEPLOY_DIR.parent / "helm" / "captioning" / "files" / "prometheus"
PIPELINE_LABEL = {"pipeline": "captioning"}

Targets = dict[str, list[str]]  # job name -> URLs of its /metrics endpoints


def install_dir(config: InfraConfig | None = None) -> Path:
    """Where the package is unpacked."""
    return tools_dir(config) / "prometheus"


def _stamp(config: InfraConfig | None) -> Path:
    return install_dir(config) / ".version"


def binary(name: str, config: InfraConfig | None = None) -> Path:
    """``prometheus`` or ``promtool``, installed on first use."""
    if not _stamp(config).exists():
        install(config)
    return install_dir(config) / "usr" / "bin" / name


def install(config: InfraConfig | None = None) -> str:
    """Download and unpack Debian's prometheus package and the UI's libraries; returns the Debian version."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError("installing Prometheus needs Debian's apt-get and dpkg (the package comes from the Debian archive)")
    version = _candidate("prometheus")
    if version is None:
        print("prometheus: apt-get update (no package index yet)...", flush=True)
        _run(["apt-get", "update", "-qq"], "apt-get update (run it as root once)")
        version = _candidate("prometheus")
    if version is None or not version.startswith(f"{PROMETHEUS_VERSION}+"):
        raise RuntimeError(f"the package index offers prometheus {version or '(none)'}; this project pins {PROMETHEUS_VERSION} (Debian 12)")
    print(f"prometheus: downloading Debian's prometheus {version} and {len(UI_PACKAGES)} web UI libraries...", flush=True)
    target = install_dir(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpacked aside and moved in whole: a concurrent install or an interrupted one leaves no half tree.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".prometheus-") as staging:
        root, downloads = Path(staging) / "root", Path(staging) / "downloads"
        downloads.mkdir()
        _run(["apt-get", "download", "-qq", f"prometheus={version}", *UI_PACKAGES], "apt-get download", cwd=downloads)
        for package in sorted(downloads.glob("*.deb")):
            _run(["dpkg", "-x", str(package), str(root)], f"dpkg -x {package.name}")
        for unused in UNUSED:
            shutil.rmtree(root / unused, ignore_errors=True)
        (root / _stamp(config).name).write_text(version)
        shutil.rmtree(target, ignore_errors=True)
        try:
            root.rename(target)
        except OSError:
            if not _stamp(config).exists():  # not another install that finished first
                raise
    return version


def _candidate(package: str) -> str | None:
    result = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True)
    for line in result.stdout.splitlines():
        key, _, value = line.strip().partition(": ")
        if key == "Candidate" and value != "(none)":
            return value
    return None


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{(result.stdout + result.stderr)[-3000:]}")


def local_targets(config: InfraConfig) -> Targets:
    """Each local service with its replicas (those `scale` asked for or that run), the console and Triton's metrics endpoint."""
    targets: Targets = {
        name: [f"http://127.0.0.1:{service.port}/metrics" for service in [replica(config, name, 0), *replicas(config, name)]]
        for name in SERVICE_NAMES
    }
    targets[CONSOLE] = [f"http://127.0.0.1:{PipelineService(config, CONSOLE).port}/metrics"]
    targets["triton"] = [config.triton.metrics_url]
    return targets


def file_sd(targets: Targets) -> list[dict]:
    """Prometheus file service discovery groups: one per URL, labelled with its job and ``pipeline="captioning"``."""
    groups = []
    for job, urls in targets.items():
        for url in urls:
            parts = urllib.parse.urlsplit(url)
            labels = {"job": job, "__scheme__": parts.scheme or "http", "__metrics_path__": parts.path or "/metrics"} | PIPELINE_LABEL
            groups.append({"targets": [parts.netloc], "labels": labels})
    return groups


class Prometheus(Component):
    """A Prometheus server with the chart's rules; healthy when ``/-/ready`` answers 200.

    ``targets`` (default: ``local_targets``) and ``port`` (default:
    ``CAPTIONING_LOCAL_PROMETHEUS_PORT``) let a test scrape a pipeline of its own;
    ``fresh`` empties the time-series database before each start.
    """

    name = "prometheus"

    def __init__(
        self, config: InfraConfig, instance: str | None = None, targets: Targets | None = None, port: int | None = None, fresh: bool = False
    ) -> None:
        super().__init__(config, instance)
        self.install_dir = install_dir(config)
        self.targets = targets
        self.port = port or config.local.prometheus_port
        self.fresh = fresh

    @property
    def url(self) -> str:
        """Base URL of the web UI and HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_file(self) -> Path:
        return self.home / "targets.json"

    def installed(self) -> bool:
        return _stamp(self.config).exists()

    def install(self) -> None:
        install(self.config)

    def scraped(self) -> Targets:
        """The targets given, or those of the local pipeline as it is now."""
        return self.targets if self.targets is not None else local_targets(self.config)

    def write_targets(self) -> None:
        """Write the scrape targets (atomically: the server re-reads the file when it changes)."""
        self.home.mkdir(parents=True, exist_ok=True)
        groups = file_sd(self.scraped())
        partial = self.targets_file.with_suffix(".tmp")
        partial.write_text(json.dumps(groups, indent=1))
        os.replace(partial, self.targets_file)

    def configuration(self) -> dict:
        """The server's configuration (JSON is YAML): short intervals for local runs, the chart's rule files."""
        interval = f"{self.config.local.prometheus_scrape_interval_s:g}s"
        return {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "rule_files": [str(RULES_DIR / "*.rules.yml")],
            "scrape_configs": [
                {"job_name": "captioning", "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "10s"}]},
            ],
        }

    def prepare(self) -> None:
        if self.fresh:
            shutil.rmtree(self.home / "data", ignore_errors=True)
        self.write_targets()
        (self.home / "prometheus.yml").write_text(json.dumps(self.configuration(), indent=1))

    def command(self) -> tuple[list[str], dict[str, str]]:
        root = self.install_dir
        return [
            str(root / "usr" / "bin" / "prometheus"),
            f"--config.file={self.home / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--storage.tsdb.retention.time={self.config.local.prometheus_retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.local-assets={root / 'usr' / 'share' / 'prometheus' / 'web'}",
            f"--web.console.templates={root / 'etc' / 'prometheus' / 'consoles'}",
            f"--web.console.libraries={root / 'etc' / 'prometheus' / 'console_libraries'}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ], {}

    def healthy(self) -> bool:
        return answers_ok(f"{self.url}/-/ready")

    def provision(self) -> str:
        """Rewrite the targets and reload the rule files; returns where to look."""
        self.write_targets()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        scraped = sum(len(urls) for urls in self.scraped().values())
        return f"{self.url} ({scraped} targets; alerts on {self.url}/classic/alerts)"

    def query(self, expression: str) -> list[dict]:
        """The result of an instant query (now) through the HTTP API; ValueError with Prometheus' message when it fails."""
        data = urllib.parse.urlencode({"query": expression, "time": f"{time.time():.3f}"}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{self.url}/api/v1/query", data=data), timeout=30) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            answer = json.load(error)
        if answer.get("status") != "success":
            raise ValueError(f"{answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]["result"]
