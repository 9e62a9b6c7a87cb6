"""Peak RSS growth of one streamed append, measured in a fresh process: `python -m
medallion_tests.lake.write_peak delta_rs|medallion <batches>` prints the growth in MB."""

import resource
import sys
import tempfile

import pyarrow as pa
import pyarrow.compute as pc

ROWS = 50_000
SCHEMA = pa.schema([("id", pa.int64()), ("value", pa.string())])


def batches(count: int):
    """`count` record batches of ROWS rows (an id and a 40-byte text), made one at a time."""
    for number in range(count):
        ids = pa.array(range(number * ROWS, (number + 1) * ROWS), pa.int64())
        text = pc.binary_join_element_wise(pc.cast(ids, pa.string()), "-some-text-padding-to-forty-bytes", "")
        yield pa.record_batch([ids, text], schema=SCHEMA)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    writer, count = sys.argv[1], int(sys.argv[2])
    from deltalake import write_deltalake

    from medallion_platform.lake.files import write_files

    next(batches(1))  # warm the kernels up before the baseline
    base = peak_mb()
    target = tempfile.mkdtemp(prefix="medallion-write-peak-")
    reader = pa.RecordBatchReader.from_batches(SCHEMA, batches(count))
    if writer == "delta_rs":
        write_deltalake(target, reader)
    else:
        write_files(target, reader, partition_by=None, storage_options=None)
    print(round(peak_mb() - base))


if __name__ == "__main__":
    main()
