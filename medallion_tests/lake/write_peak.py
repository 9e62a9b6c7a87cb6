"""Peak RSS growth of one streamed append, measured in a fresh process: `python -m
medallion_tests.lake.write_peak delta_rs|medallion <batches>` prints the growth in MB."""

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


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith(field + ":"):
                return int(row.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> float:
    """Resets the process's peak RSS (Linux `clear_refs` 5) and returns the RSS now, in MB."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status_mb("VmRSS")


def main() -> None:
    writer, count = sys.argv[1], int(sys.argv[2])
    from deltalake import write_deltalake

    from medallion_platform.lake.files import write_files

    next(batches(1))  # warm the kernels up before the baseline
    base = reset_peak()
    target = tempfile.mkdtemp(prefix="medallion-write-peak-")
    reader = pa.RecordBatchReader.from_batches(SCHEMA, batches(count))
    if writer == "delta_rs":
        write_deltalake(target, reader)
    else:
        write_files(target, reader, partition_by=None, storage_options=None)
    print(round(_status_mb("VmHWM") - base))


if __name__ == "__main__":
    main()
