"""Ingestion on the AWS APIs: Kinesis producer, Firehose forwarder (local AWS), batch exports, local emulator.

Every module takes `Settings` and talks to whatever endpoint they name: AWS itself, or the local
emulator started by `local_aws`. Nothing here knows which one it is.
"""
