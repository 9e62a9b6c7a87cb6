"""Reading back what the emulator holds."""

from typing import Any


def stream_records(kinesis: Any, stream: str) -> list[dict]:
    """Every record on every shard of `stream`, from the start."""
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not response["Records"]:
                break
            out += [{**r, "ShardId": shard["ShardId"]} for r in response["Records"]]
            iterator = response.get("NextShardIterator")
    return out


class FlakyKinesis:
    """A Kinesis client that fails every `every`-th record of the first `failing_calls` PutRecords calls."""

    def __init__(self, client: Any, *, every: int = 3, failing_calls: int = 2):
        self.client, self.every, self.failing_calls = client, every, failing_calls
        self.calls: list[int] = []

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:
        self.calls.append(len(Records))
        if len(self.calls) > self.failing_calls:
            return self.client.put_records(StreamName=StreamName, Records=Records)
        keep = [r for i, r in enumerate(Records) if i % self.every]
        real = iter(self.client.put_records(StreamName=StreamName, Records=keep)["Records"]) if keep else iter(())
        results = []
        for i in range(len(Records)):
            if i % self.every:
                results.append(next(real))
            else:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedRecordCount": failed, "Records": results}
