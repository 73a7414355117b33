"""The local Kubernetes control plane's pins and certificates (no build, no server: ``make kube-test`` runs the cluster)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from localinfra.kube import WRAPPER_MODULE, kubernetes_version
from localinfra.kube_pki import create_pki


def test_the_wrapper_replaces_each_staging_module_with_the_release_of_its_kubernetes() -> None:
    """k8s.io/kubernetes v1.X.Y publishes its staging modules as v0.X.Y; a mixed pin would not build or would skew."""
    go_mod = (WRAPPER_MODULE / "go.mod").read_text()
    staging = "v0." + kubernetes_version().removeprefix("v1.")
    replaces = re.findall(r"^\s*(k8s\.io/\S+) => (k8s\.io/\S+) (v\S+)$", go_mod, re.MULTILINE)
    assert len(replaces) >= 30
    assert [(module, version) for module, target, version in replaces if target != module or version != staging] == []
    required = set(re.findall(r"^\s*(k8s\.io/\S+) v\S+(?: // indirect)?$", go_mod, re.MULTILINE))
    go_sum = (WRAPPER_MODULE / "go.sum").read_text()
    built = [module for module, _, _ in replaces if module in required]
    assert len(built) >= 20
    assert [module for module in built if f"{module} {staging} h1:" not in go_sum] == []


def _openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def _text(certificate: Path) -> str:
    return _openssl("x509", "-in", str(certificate), "-noout", "-text")


def test_the_pki_chains_both_certificates_to_its_ca(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pki.ca_cert), str(pki.serving_cert), str(pki.admin_cert)], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    serving = _text(pki.serving_cert)
    assert "IP Address:127.0.0.1" in serving and "DNS:kubernetes.default.svc" in serving
    assert "TLS Web Server Authentication" in serving
    admin = _text(pki.admin_cert)
    assert re.search(r"Subject: O\s*=\s*system:masters, CN\s*=\s*local-admin", admin)
    assert "TLS Web Client Authentication" in admin
    assert _openssl("pkey", "-in", str(pki.service_account_key), "-pubout") == pki.service_account_public_key.read_text()
