"""Local infrastructure as plain processes: Kafka (KRaft), an S3 server and Triton.

Installed from package registries into one git-ignored state directory, started,
health-checked and stopped by ``python -m localinfra up|status|down``.
"""
