"""MinIO, built from source through the Go module proxy, as the local S3-compatible server."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request

from captioning_common.storage import ObjectStore
from localinfra.components import Component
from localinfra.settings import host_port

# MinIO publishes no semver tags; the module proxy serves this pseudo-version.
MINIO_MODULE = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"


class S3Server(Component):
    """A single-drive MinIO server with the project's bucket."""

    name = "s3"

    @property
    def binary(self):
        return self.install_dir / "bin" / "minio"

    def installed(self) -> bool:
        return self.binary.exists()

    def install(self) -> None:
        if shutil.which("go") is None:
            raise RuntimeError("Go 1.24+ is needed to build MinIO: install it from your distribution or go.dev")
        self.install_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(self.binary.parent), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
        subprocess.run(["go", "install", "-trimpath", MINIO_MODULE], check=True, env=env)

    def command(self) -> tuple[list[str], dict[str, str]]:
        s3 = self.config.s3
        host, port = host_port(s3.endpoint_url)
        command = [
            str(self.binary), "server", str(self.home / "data"),
            "--address", f"{host}:{port}",
            "--console-address", f"{host}:{self.config.local.s3_console_port}",
            "--quiet",
        ]
        env = {
            "MINIO_ROOT_USER": s3.access_key_id,
            "MINIO_ROOT_PASSWORD": s3.secret_access_key.get_secret_value(),
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_REGION": s3.region,
        }
        return command, env

    def healthy(self) -> bool:
        """True when an S3 endpoint answers at the configured URL (MinIO or any other)."""
        try:
            with urllib.request.urlopen(self.config.s3.endpoint_url.rstrip("/") + "/minio/health/live", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # an S3 server that is not MinIO answered
        except OSError:
            return False

    def provision(self) -> str:
        created = ObjectStore(self.config.s3).ensure_bucket()
        return f"bucket {self.config.s3.bucket} {'created' if created else 'present'}"
