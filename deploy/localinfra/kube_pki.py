"""Certificates of the local Kubernetes control plane, made with the ``openssl`` command.

A throwaway CA signs the API server's serving certificate (loopback names only) and an
admin client certificate in ``system:masters``; a separate key signs service-account tokens.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The names the API server answers to: loopback for the local clients, the in-cluster names for completeness.
SERVING_NAMES = "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
DAYS = "2"


@dataclass(frozen=True)
class Pki:
    """Paths of the generated keys and certificates."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_public_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _ec_key(name: str, cwd: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name, cwd=cwd)


def _signed(name: str, subject: str, extensions: str, cwd: Path) -> None:
    """``<name>.key`` and ``<name>.crt`` signed by the CA, with the given X.509v3 extension lines."""
    _ec_key(f"{name}.key", cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", DAYS, "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd,
    )


def create_pki(directory: Path) -> Pki:
    """Generate every key and certificate into ``directory`` (replacing what was there)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed to make the local cluster's certificates: install it from your distribution")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    _ec_key("ca.key", directory)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=captioning-local-kube-ca", "-days", DAYS,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", "ca.crt", cwd=directory,
    )
    _signed(
        "apiserver", "/CN=kube-apiserver",
        f"subjectAltName={SERVING_NAMES}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
        directory,
    )
    _signed("admin", "/O=system:masters/CN=local-admin", "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n", directory)
    _ec_key("service-account.key", directory)
    _openssl("pkey", "-in", "service-account.key", "-pubout", "-out", "service-account.pub", cwd=directory)
    return Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        service_account_key=directory / "service-account.key",
        service_account_public_key=directory / "service-account.pub",
    )
