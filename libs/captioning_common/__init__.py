"""Plumbing shared by every captioning service: settings, Kafka, S3, Triton, metrics, logs."""
