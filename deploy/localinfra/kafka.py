"""Apache Kafka 4.x, single-node KRaft (broker + controller), jars from Maven Central."""

from __future__ import annotations

import shutil
import subprocess

from confluent_kafka.admin import AdminClient

from captioning_common.kafka.topics import apply_topics, load_topics
from localinfra.components import DEPLOY_DIR, Component
from localinfra.settings import host_port

POM = DEPLOY_DIR / "kafka" / "pom.xml"
LOG4J = DEPLOY_DIR / "kafka" / "log4j2.properties"


class Kafka(Component):
    """Kafka broker and controller in one JVM, storage formatted on first start."""

    name = "kafka"

    @property
    def lib_dir(self):
        return self.install_dir / "lib"

    def installed(self) -> bool:
        return (self.install_dir / "lib.ok").exists()

    def install(self) -> None:
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to resolve the Kafka jars: apt-get install maven")
        self.install_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
             f"-DoutputDirectory={self.lib_dir}", "-DincludeScope=runtime"],
            check=True,
        )
        (self.install_dir / "lib.ok").write_text(POM.read_text())

    def _java(self, main: str, *args: str) -> list[str]:
        local = self.config.local
        return [
            local.java, f"-Xms{local.kafka_heap}", f"-Xmx{local.kafka_heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.home / 'logs'}",
            f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{self.lib_dir}/*", main, *args,
        ]

    def prepare(self) -> None:
        host, port = host_port(self.config.kafka.bootstrap_servers.split(",")[0])
        controller = f"{host}:{self.config.local.kafka_controller_port}"
        data = self.home / "data"
        self.home.mkdir(parents=True, exist_ok=True)
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": controller,
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "6",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics come from the declarative spec only; a typo must not create one.
            "auto.create.topics.enable": "false",
        }
        config_file = self.home / "server.properties"
        config_file.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        if not (data / "meta.properties").exists():
            cluster_id = subprocess.run(
                [self.config.local.java, "-cp", f"{self.lib_dir}/*", "kafka.tools.StorageTool", "random-uuid"],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-c", str(config_file), "-t", cluster_id, "--standalone"),
                check=True, capture_output=True,
            )

    def command(self) -> tuple[list[str], dict[str, str]]:
        return self._java("kafka.Kafka", str(self.home / "server.properties")), {}

    def healthy(self) -> bool:
        admin = AdminClient(self.config.kafka.client_config() | {"socket.connection.setup.timeout.ms": 1000, "log_level": 0})
        try:
            admin.list_topics(timeout=2)
            return True
        except Exception:
            return False

    def provision(self) -> str:
        topics = load_topics()
        created = apply_topics(self.config.kafka, topics)
        return f"{len(topics)} topics declared, {len(created)} created"
