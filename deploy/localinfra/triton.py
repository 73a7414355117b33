"""Triton Inference Server 2.51 from the ``nvidia-pytriton`` wheel on PyPI, CPU python backend.

Only the wheel's ``tritonserver`` binary, backends and libraries are used: the wheel
is unpacked into the state directory, not installed, so its Python dependencies
never constrain the project's. Python-backend models run on the project's own
interpreter and packages (the stub finds ``python3`` on PATH).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from localinfra.components import Component
from localinfra.process import answers_ok
from localinfra.settings import host_port

PYTRITON_VERSION = "0.7.0"  # ships Triton 2.51.0


class Triton(Component):
    """tritonserver serving ``model_repository/`` over HTTP, gRPC and Prometheus metrics."""

    name = "triton"

    @property
    def wheel_dir(self) -> Path:
        return self.install_dir / f"pytriton-{PYTRITON_VERSION}"

    @property
    def server_dir(self) -> Path:
        return self.wheel_dir / "pytriton" / "tritonserver"

    @property
    def backend_dir(self) -> Path:
        return self.install_dir / "backends"

    def installed(self) -> bool:
        return (self.backend_dir / "python" / "triton_python_backend_stub").exists()

    def install(self) -> None:
        downloads = self.install_dir / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             f"nvidia-pytriton=={PYTRITON_VERSION}", "-d", str(downloads)],
            check=True,
        )
        wheel = next(downloads.glob(f"nvidia_pytriton-{PYTRITON_VERSION}-*.whl"))
        shutil.rmtree(self.wheel_dir, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(("pytriton/tritonserver/", "nvidia_pytriton.libs/"))]
            archive.extractall(self.wheel_dir, members)
        for path in self.wheel_dir.rglob("*"):  # zip archives drop the executable bits
            if path.is_file():
                path.chmod(0o755)
        # The python backend needs the stub built for the running Python beside it.
        shutil.rmtree(self.backend_dir, ignore_errors=True)
        shutil.copytree(self.server_dir / "backends", self.backend_dir)
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = self.server_dir / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.exists():
            raise RuntimeError(f"nvidia-pytriton {PYTRITON_VERSION} has no python backend stub for Python {version}")
        shutil.copy2(stub, self.backend_dir / "python" / stub.name)
        wheel.unlink()

    def command(self) -> tuple[list[str], dict[str, str]]:
        triton = self.config.triton
        http_host, http_port = host_port(triton.http_url)
        grpc_host, grpc_port = host_port(triton.grpc_url)
        metrics_host, metrics_port = host_port(triton.metrics_url)
        command = [
            str(self.server_dir / "bin" / "tritonserver"),
            f"--model-repository={self.config.local.model_repository.resolve()}",
            f"--backend-directory={self.backend_dir}",
            f"--cache-directory={self.server_dir / 'caches'}",
            f"--http-address={http_host}", f"--http-port={http_port}",
            f"--grpc-address={grpc_host}", f"--grpc-port={grpc_port}",
            f"--metrics-address={metrics_host}", f"--metrics-port={metrics_port}",
            "--allow-metrics=true", "--allow-gpu-metrics=false", "--allow-cpu-metrics=true",
            "--strict-readiness=true", "--exit-on-error=true", "--exit-timeout-secs=15",
            f"--model-control-mode={self.config.local.triton_model_control_mode}",
            "--log-verbose=0",
        ]
        if self.config.local.triton_model_config_name:
            command.append(f"--model-config-name={self.config.local.triton_model_config_name}")
        # The stub is linked against libpython; load the one of the interpreter the venv uses,
        # and let it find the venv's python3 on PATH so models import the project's packages.
        libraries = [str(self.wheel_dir / "nvidia_pytriton.libs"), sysconfig.get_config_var("LIBDIR") or ""]
        env = {
            "LD_LIBRARY_PATH": ":".join(filter(None, libraries)),
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        }
        return command, env

    def healthy(self) -> bool:
        host, port = host_port(self.config.triton.http_url)
        return answers_ok(f"http://{host}:{port}/v2/health/ready")
