"""Fault injection: the pipeline under seeded SIGKILLs of services, brokers and servers (``python -m localinfra.chaos``)."""
