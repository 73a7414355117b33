"""Apache Kafka 4.x in KRaft mode, jars from Maven Central.

``Kafka`` is the single node ``make up`` and the tests use (broker + controller in
one JVM). ``KafkaNode`` is one node of a cluster: ``kafka_cluster`` gives one per
entry of ``CAPTIONING_KAFKA_BOOTSTRAP_SERVERS``, each broker + controller with its
own data directory, listening on its entry and on ``CAPTIONING_LOCAL_KAFKA_CONTROLLER_PORT``
+ node id - 1; the controllers form the quorum, and topics get a replication factor of
the cluster's size with ``min.insync.replicas`` one less (2 of 3).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

from confluent_kafka.admin import AdminClient, ConfigResource

from captioning_common.kafka.topics import TopicSpec, apply_topics, load_topics
from captioning_common.settings import KafkaSettings
from localinfra.components import DEPLOY_DIR, Component
from localinfra.process import wait_for
from localinfra.settings import InfraConfig, host_port

POM = DEPLOY_DIR / "kafka" / "pom.xml"
LOG4J = DEPLOY_DIR / "kafka" / "log4j2.properties"


def answers_metadata(settings: KafkaSettings) -> bool:
    """Whether a broker of ``settings`` answers a metadata request within about two seconds."""
    admin = AdminClient(settings.client_config() | {"socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    try:
        admin.list_topics(timeout=2)
        return True
    except Exception:
        return False


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
        properties = {"node.id": "1", "controller.quorum.bootstrap.servers": controller}
        config_file = self._write_config(properties | self._node_properties(host, port, controller, replicas=1))
        if not self._formatted():
            self._format(config_file, self._random_cluster_id(), "--standalone")

    def _node_properties(self, host: str, port: int, controller: str, replicas: int) -> dict[str, str]:
        """What every node sets, alone or in a cluster of ``replicas`` nodes."""
        min_isr = str(max(1, replicas - 1))
        return {
            "process.roles": "broker,controller",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "1",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": str(replicas),
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "6",
            "share.coordinator.state.topic.replication.factor": str(replicas),
            "share.coordinator.state.topic.min.isr": min_isr,
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics come from the declarative spec only; a typo must not create one.
            "auto.create.topics.enable": "false",
        }

    def _write_config(self, properties: dict[str, str]):
        self.home.mkdir(parents=True, exist_ok=True)
        config_file = self.home / "server.properties"
        config_file.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        return config_file

    def _formatted(self) -> bool:
        return (self.home / "data" / "meta.properties").exists()

    def _random_cluster_id(self) -> str:
        return subprocess.run(
            [self.config.local.java, "-cp", f"{self.lib_dir}/*", "kafka.tools.StorageTool", "random-uuid"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]

    def _format(self, config_file, cluster_id: str, *options: str) -> None:
        subprocess.run(self._java("kafka.tools.StorageTool", "format", "-c", str(config_file), "-t", cluster_id, *options), check=True, capture_output=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        return self._java("kafka.Kafka", str(self.home / "server.properties")), {}

    def healthy(self) -> bool:
        return answers_metadata(self.config.kafka)

    def provision(self) -> str:
        topics = load_topics()
        created = apply_topics(self.config.kafka, topics)
        return f"{len(topics)} topics declared, {len(created)} created"


def cluster_topics(replication_factor: int) -> dict[str, TopicSpec]:
    """The topics of the spec with ``replication_factor`` instead of the spec's (the spec file is for one broker)."""
    return {name: dataclasses.replace(spec, replication_factor=replication_factor) for name, spec in load_topics().items()}


class KafkaNode(Kafka):
    """Node ``node_id`` (1-based) of a KRaft cluster of ``size`` combined broker + controller nodes.

    Same install as ``Kafka``; instance ``kafka-<id>`` has its own data, pid and log,
    so one node can be killed and restarted while the others serve.
    """

    def __init__(self, config: InfraConfig, node_id: int, size: int) -> None:
        super().__init__(config, instance=f"kafka-{node_id}")
        self.node_id = node_id
        self.size = size
        self.address = config.kafka.bootstrap_servers.split(",")[node_id - 1].strip()

    def _controller(self, node_id: int) -> str:
        host, _ = host_port(self.config.kafka.bootstrap_servers.split(",")[node_id - 1].strip())
        return f"{host}:{self.config.local.kafka_controller_port + node_id - 1}"

    def cluster_id_file(self):
        """Shared by the nodes: every node's storage is formatted with the same cluster id."""
        return self.config.state_dir / "kafka-cluster-id"

    def prepare(self) -> None:
        host, port = host_port(self.address)
        properties = {
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(f"{n}@{self._controller(n)}" for n in range(1, self.size + 1)),
            **self._node_properties(host, port, self._controller(self.node_id), replicas=self.size),
            "unclean.leader.election.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.replica.fetchers": "1",
            "background.threads": "2",
        }
        config_file = self._write_config(properties)
        if not self._formatted():
            id_file = self.cluster_id_file()
            if not id_file.exists():
                id_file.parent.mkdir(parents=True, exist_ok=True)
                id_file.write_text(self._random_cluster_id())
            self._format(config_file, id_file.read_text().strip())

    def healthy(self) -> bool:
        """True when this node answers a metadata request on its own listener."""
        return answers_metadata(self.config.kafka.model_copy(update={"bootstrap_servers": self.address}))

    def provision(self) -> str:
        """Nothing per node: the cluster's topics are applied by ``provision_cluster`` once every node is up."""
        return ""


def kafka_cluster(config: InfraConfig) -> list[KafkaNode]:
    """One node per entry of the bootstrap list (three entries: three nodes, a quorum of three controllers)."""
    addresses = [address for address in config.kafka.bootstrap_servers.split(",") if address.strip()]
    return [KafkaNode(config, node_id, len(addresses)) for node_id in range(1, len(addresses) + 1)]


def cluster_brokers(config: InfraConfig) -> int:
    """How many brokers the cluster's metadata names now."""
    admin = AdminClient(config.kafka.client_config() | {"socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    return len(admin.list_topics(timeout=5).brokers)


def under_replicated(config: InfraConfig) -> list[str]:
    """``topic/partition`` of every partition whose in-sync replicas are fewer than its replicas."""
    admin = AdminClient(config.kafka.client_config() | {"log_level": 0})
    metadata = admin.list_topics(timeout=10)
    return sorted(
        f"{name}/{partition.id}"
        for name, topic in metadata.topics.items()
        for partition in topic.partitions.values()
        if len(partition.isrs) < len(partition.replicas)
    )


def replication(config: InfraConfig) -> dict[str, int]:
    """Brokers in the cluster's metadata; the fewest and most replicas of a partition, and the lowest ``min.insync.replicas``, of the spec's topics."""
    admin = AdminClient(config.kafka.client_config() | {"log_level": 0})
    metadata = admin.list_topics(timeout=10)
    names = [name for name in load_topics() if name in metadata.topics]
    counts = [len(p.replicas) for name in names for p in metadata.topics[name].partitions.values()]
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    min_isr = {int(future.result(10)["min.insync.replicas"].value) for future in admin.describe_configs(resources).values()}
    return {
        "brokers": len(metadata.brokers),
        "min_replicas": min(counts, default=0),
        "max_replicas": max(counts, default=0),
        "min_insync_replicas": min(min_isr, default=0),
    }


def provision_cluster(config: InfraConfig, nodes: list[KafkaNode]) -> str:
    """Create the spec's topics with a replication factor of the cluster's size, once every broker registered."""
    wait_for(lambda: cluster_brokers(config) == len(nodes), config.local.start_timeout_s, what="every Kafka broker registered")
    topics = cluster_topics(len(nodes))
    created = apply_topics(config.kafka, topics)
    return f"{len(topics)} topics declared (replication factor {len(nodes)}), {len(created)} created"
