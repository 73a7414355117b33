"""A throwaway Kubernetes control plane on loopback, for installing the Helm chart into a real API server.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are built from the Go module proxy
through the wrapper module ``deploy/kube`` (k8s.io/kubernetes with its staging modules replaced by
their published versions); kwok plays the kubelet of fake nodes created through the API: it marks
their pods Running and Ready and completes the pods of Jobs. Nothing runs in the pods.

Usage::

    with LocalKube() as kube:          # builds on first use (several minutes), starts, adds the nodes
        kube.request("GET", "/api/v1/nodes")
        subprocess.run([helm, "install", ...], env=kube.env())
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from localinfra.kube_pki import Pki, create_pki
from localinfra.process import ManagedProcess, wait_for
from localinfra.settings import InfraConfig
from localinfra.tools import go_env, go_module_tool

WRAPPER_MODULE = Path(__file__).resolve().parents[1] / "kube"
KWOK_MODULE = "sigs.k8s.io/kwok"
PACKAGES = {
    "etcd": "./cmd/etcd",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kwok": f"{KWOK_MODULE}/cmd/kwok",
}
# kwok's own stages (from its module): nodes become Ready and keep a heartbeat; pods become Ready,
# pods owned by a Job then Succeed, deleted pods go away.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# What the Deployments, ReplicaSets and Jobs of a chart need; service accounts for its pods; the node
# lifecycle controller lifts the not-ready taint of new nodes once kwok reports them Ready.
CONTROLLERS = (
    "deployment-controller", "replicaset-controller", "job-controller", "garbage-collector-controller",
    "namespace-controller", "node-lifecycle-controller", "serviceaccount-controller", "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller", "disruption-controller", "ttl-after-finished-controller",
)


class KubeSettings(BaseSettings):
    """Ports and fake nodes of the local Kubernetes control plane (prefix ``CAPTIONING_KUBE_``)."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONING_KUBE_", extra="ignore")

    etcd_client_port: int = Field(12379, description="Client port of the local cluster's etcd.")
    etcd_peer_port: int = Field(12380, description="Peer port of the local cluster's etcd.")
    apiserver_port: int = Field(16443, description="HTTPS port of the local kube-apiserver.")
    controller_manager_port: int = Field(16257, description="HTTPS (health) port of the local kube-controller-manager.")
    scheduler_port: int = Field(16259, description="HTTPS (health) port of the local kube-scheduler.")
    nodes: int = Field(2, description="Fake nodes kwok manages in the local cluster.")
    node_cpu: str = Field("16", description="Allocatable CPU of each fake node.")
    node_memory: str = Field("64Gi", description="Allocatable memory of each fake node.")
    node_gpus: int = Field(1, description="Allocatable `nvidia.com/gpu` of each fake node.")
    start_timeout_s: float = Field(120.0, description="How long the local cluster waits for each component to become healthy.")


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version the wrapper module pins (``v1.x.y``)."""
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", (WRAPPER_MODULE / "go.mod").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{WRAPPER_MODULE / 'go.mod'} pins no k8s.io/kubernetes version")
    return match.group(1)


def build(config: InfraConfig | None = None) -> dict[str, Path]:
    """The control plane's binaries, built on first use; name -> path.

    The version variables are the ones Kubernetes' release build sets, so that the API server
    reports its real version (Helm checks charts' ``kubeVersion`` against it).
    """
    version = kubernetes_version()
    major, minor = version.lstrip("v").split(".")[:2]
    ldflags = " ".join(
        f"-X k8s.io/component-base/version.{name}={value}"
        for name, value in (("gitVersion", version), ("gitMajor", major), ("gitMinor", minor))
    )
    paths = go_module_tool(list(PACKAGES), WRAPPER_MODULE, list(PACKAGES.values()), config, ldflags=ldflags)
    return dict(zip(PACKAGES, paths, strict=True))


def kwok_stages(config: InfraConfig | None = None) -> str:
    """kwok's stage manifests, from the kwok module the wrapper pins, as one multi-document YAML."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", KWOK_MODULE], cwd=WRAPPER_MODULE, env=go_env(config), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"go mod download {KWOK_MODULE} failed:\n{(result.stdout + result.stderr)[-2000:]}")
    root = Path(json.loads(result.stdout)["Dir"])
    return "\n---\n".join((root / stage).read_text() for stage in KWOK_STAGES)


class KubeError(RuntimeError):
    """The API server answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body.get('message', body)}")
        self.status = status
        self.body = body


class LocalKube:
    """etcd, the API server, the controller manager, the scheduler and kwok, with fake nodes."""

    def __init__(self, settings: KubeSettings | None = None, config: InfraConfig | None = None) -> None:
        self.settings = settings or KubeSettings()
        self.config = config or InfraConfig()
        self.home = self.config.state_dir / "kube"
        self.processes = {name: ManagedProcess(name, self.home / "logs") for name in PACKAGES}
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}
        self._pki: Pki | None = None
        self._context: ssl.SSLContext | None = None
        self.start_seconds = 0.0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.settings.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.home / "admin.kubeconfig"

    @property
    def pki(self) -> Pki:
        if self._pki is None:
            raise RuntimeError("the local cluster is not started")
        return self._pki

    def env(self) -> dict[str, str]:
        """Environment for kubectl/helm: the admin kubeconfig, and helm's caches inside the cluster's directory."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            **{f"HELM_{kind}_HOME": str(self.home / "helm" / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")},
        }

    def __enter__(self) -> LocalKube:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> float:
        """Build (first run), start every component on a fresh state and add the fake nodes; returns the seconds taken."""
        binaries = build(self.config)
        began = time.monotonic()
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        self._pki = create_pki(self.home / "pki")
        self._context = None
        self._write_kubeconfig()
        self._start_etcd(binaries["etcd"])
        self._start_apiserver(binaries["kube-apiserver"])
        self._start_controllers(binaries)
        self._start_kwok(binaries["kwok"])
        for index in range(self.settings.nodes):
            self.add_node(f"kwok-node-{index}", zone=f"zone-{index % 2}")
        self.start_seconds = time.monotonic() - began
        return self.start_seconds

    def stop(self) -> None:
        """Stop every component, the last started first."""
        for process in reversed(self.processes.values()):
            process.stop(timeout_s=15)

    def _write_kubeconfig(self) -> None:
        cluster = {"server": self.server, "certificate-authority": str(self.pki.ca_cert)}
        user = {"client-certificate": str(self.pki.admin_cert), "client-key": str(self.pki.admin_key)}
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": cluster}],
            "users": [{"name": "admin", "user": user}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        self.kubeconfig.write_text(json.dumps(kubeconfig, indent=2))  # JSON is YAML

    def _start(self, name: str, command: list[str], healthy: Any) -> None:
        process = self.processes[name]
        process.start(command, cwd=self.home)
        wait_for(healthy, self.settings.start_timeout_s, process, name)

    def _start_etcd(self, binary: Path) -> None:
        client = f"http://127.0.0.1:{self.settings.etcd_client_port}"
        peer = f"http://127.0.0.1:{self.settings.etcd_peer_port}"
        command = [
            str(binary), "--name=local", f"--data-dir={self.home / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=local={peer}",
            "--unsafe-no-fsync", "--log-level=warn",
        ]
        self._start("etcd", command, lambda: _etcd_healthy(client))

    def _start_apiserver(self, binary: Path) -> None:
        pki = self.pki
        command = [
            str(binary), f"--etcd-servers=http://127.0.0.1:{self.settings.etcd_client_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.settings.apiserver_port}",
            f"--cert-dir={self.home / 'apiserver'}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--endpoint-reconciler-type=none",  # the loopback address is no valid endpoint of the kubernetes Service
            "--profiling=false",
        ]
        self._start("kube-apiserver", command, lambda: self._get_text("/readyz") == "ok")

    def _start_controllers(self, binaries: dict[str, Path]) -> None:
        common = ["--bind-address=127.0.0.1", f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--profiling=false"]
        manager = [
            str(binaries["kube-controller-manager"]), *common, f"--secure-port={self.settings.controller_manager_port}",
            f"--controllers={','.join(CONTROLLERS)}", f"--root-ca-file={self.pki.ca_cert}",
            f"--service-account-private-key-file={self.pki.service_account_key}", "--use-service-account-credentials=false",
            "--node-monitor-grace-period=60s",  # kwok's heartbeat comes every 20 to 25 s
        ]
        self._start("kube-controller-manager", manager, lambda: _healthz(self.settings.controller_manager_port))
        scheduler = [str(binaries["kube-scheduler"]), *common, f"--secure-port={self.settings.scheduler_port}"]
        self._start("kube-scheduler", scheduler, lambda: _healthz(self.settings.scheduler_port))

    def _start_kwok(self, binary: Path) -> None:
        stages = self.home / "kwok-stages.yaml"
        stages.write_text(kwok_stages(self.config))
        key, value = FAKE_NODE_ANNOTATION
        command = [
            str(binary), f"--config={stages}", f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={key}={value}",
            "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1",
        ]
        self.processes["kwok"].start(command, cwd=self.home)  # healthy once it makes the first node Ready

    def add_node(self, name: str, zone: str) -> None:
        """Create a fake node kwok manages (CPU, memory and GPUs of the settings) and wait until it is Ready."""
        resources = {
            "cpu": self.settings.node_cpu, "memory": self.settings.node_memory, "pods": "110",
            "nvidia.com/gpu": str(self.settings.node_gpus),
        }
        key, value = FAKE_NODE_ANNOTATION
        labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone, "type": "kwok"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "annotations": {key: value}, "labels": labels},
            "status": {"allocatable": resources, "capacity": resources},
        }
        self.request("POST", "/api/v1/nodes", node)

        def ready() -> bool:
            conditions = self.request("GET", f"/api/v1/nodes/{name}").get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        wait_for(ready, self.settings.start_timeout_s, self.processes["kwok"], f"node {name}")

    def _ssl(self) -> ssl.SSLContext:
        """TLS as the admin: the cluster's CA, the admin client certificate."""
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            self._context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return self._context

    def _get_text(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.server}{path}", context=self._ssl(), timeout=5) as response:
            return response.read().decode()

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """One API call as the admin; the decoded JSON answer. Raises ``KubeError`` on an error status."""
        url = f"{self.server}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self._ssl(), timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                answer = json.loads(payload)
            except ValueError:
                answer = {"message": payload.decode(errors="replace")}
            raise KubeError(method, path, error.code, answer) from None

    def collection_path(self, manifest: dict[str, Any], namespace: str) -> str:
        """The REST collection of ``manifest``'s kind (``/api/v1/namespaces/<ns>/configmaps``), found through discovery."""
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if api_version not in self._resources:
            listing = self.request("GET", base)["resources"]
            self._resources[api_version] = {r["kind"]: (r["name"], r["namespaced"]) for r in listing if "/" not in r["name"]}
        try:
            plural, namespaced = self._resources[api_version][kind]
        except KeyError:
            raise RuntimeError(f"the API server serves no {kind} in {api_version}") from None
        if not namespaced:
            return f"{base}/{plural}"
        return f"{base}/namespaces/{manifest['metadata'].get('namespace', namespace)}/{plural}"

    def create(self, manifest: dict[str, Any], namespace: str = "default", query: dict[str, str] | None = None) -> dict[str, Any]:
        """POST ``manifest`` to its collection (``query`` e.g. ``dryRun=All``, ``fieldValidation=Strict``)."""
        return self.request("POST", self.collection_path(manifest, namespace), manifest, query)


def _etcd_healthy(client_url: str) -> bool:
    with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:
        return json.loads(response.read())["health"] == "true"


def _healthz(port: int) -> bool:
    """The component's /healthz (self-signed serving certificate; the path needs no authentication)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=2) as response:
        return response.read() == b"ok"
