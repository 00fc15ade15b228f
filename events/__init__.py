"""The contract between stages: hook catalog, envelope, output tables, bus protocol.

Nothing in here does IO. ingest, processors and sinks import this package and
never each other's internals.
"""
