"""Ingestion on the AWS APIs: Kinesis producer, Firehose forwarder (local AWS), batch exports.

Every module takes `Settings` and talks to whatever endpoint they name: AWS itself, or the local
emulator started by `medallion local-aws up` (devtools). Nothing here knows which one it is.
"""
