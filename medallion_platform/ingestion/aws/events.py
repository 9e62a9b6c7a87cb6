"""S3 "Object Created" events: the landing rule's pattern and queue redrive, and reading what reaches the queue.

Pure functions and constants (standard library only): the Pulumi program (`infra_pulumi/`) and the local
emulator set-up (devtools' `local_aws.py`) both build the landing rule and queue from here, so they cannot drift.
"""

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from medallion_platform.errors import PoisonMessage

__all__ = [
    "LANDING_MAX_RECEIVE_COUNT",
    "CreatedObject",
    "PoisonMessage",
    "landing_event_pattern",
    "parse_created_objects",
]

LANDING_MAX_RECEIVE_COUNT = 5
"""Receives of a landing message before SQS moves it to the dead-letter queue (the queue's redrive policy)."""


def landing_event_pattern(raw_bucket: str) -> dict:
    """The EventBridge pattern of the landing rule: objects created under `landing/` in the raw bucket."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [raw_bucket]}, "object": {"key": [{"prefix": "landing/"}]}},
    }


@dataclass(frozen=True)
class CreatedObject:
    """One created object named by a notification."""

    bucket: str
    key: str
    etag: str


def parse_created_objects(body: str) -> list[CreatedObject]:
    """The objects a message announces; `[]` for S3's test event; `PoisonMessage` for anything else.

    EventBridge "Object Created" events carry one object (key as written). Direct S3 notifications
    (`Records`) URL-encode keys, so those are decoded.
    """
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise PoisonMessage("not a JSON object")
        if event.get("Event") == "s3:TestEvent":
            return []
        if "detail" in event:
            if event.get("detail-type") != "Object Created" or event.get("source") != "aws.s3":
                raise PoisonMessage(f"unexpected event {event.get('source')!r}/{event.get('detail-type')!r}")
            detail = event["detail"]
            obj = detail["object"]
            return [CreatedObject(detail["bucket"]["name"], obj["key"], _etag(obj))]
        if "Records" in event:
            return [
                CreatedObject(
                    r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]), _etag(r["s3"]["object"])
                )
                for r in event["Records"]
                if str(r.get("eventName", "")).startswith("ObjectCreated")
            ]
    except PoisonMessage:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PoisonMessage(f"unreadable notification ({type(exc).__name__}: {exc})") from None
    raise PoisonMessage("neither an EventBridge event nor an S3 notification")


def _etag(obj: dict) -> str:
    etag = obj.get("etag") or obj.get("eTag")
    if not etag or not isinstance(etag, str):
        raise PoisonMessage("the notification has no ETag")
    return etag.strip('"')
