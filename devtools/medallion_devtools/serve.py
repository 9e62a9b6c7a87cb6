"""`medallion local-aws up`: the local AWS emulator's life cycle in the foreground (or kept for a test),
with the signal handling a long-running command needs."""

import signal
import sys
import time

from medallion_devtools.local_aws import LocalAws, create_resources, local_aws_environ, start_emulator
from medallion_platform.naming import resource_names

__all__ = ["local_aws_down", "local_aws_up"]

_RUNNING: dict[str, LocalAws] = {}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def local_aws_up(
    stack: str = "local", port: int | None = None, *, serve_forever: bool = False, shards: int = 2
) -> dict[str, str]:
    """Starts the emulator on 127.0.0.1 (a free port unless `port`), creates the stack's resources,
    prints the variables to export and returns them. With `serve_forever`, blocks until Ctrl-C, then stops.
    """
    if serve_forever:
        # Ctrl-C and SIGTERM stop it, even when it was started with Ctrl-C ignored (as a background job
        # of a script is): the disposition is inherited, and Python keeps an inherited "ignore".
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
    aws = start_emulator(port)
    environ: dict[str, str] = {}
    kept = False
    # From here on the server thread runs: whatever ends this call (Ctrl-C even while the exports are
    # printed, or a failure) stops it, or the process would wait for that thread forever.
    try:
        resources = create_resources(aws, resource_names(stack), shards=shards)
        environ = local_aws_environ(aws, resources)
        print(f"# local AWS for stack {stack!r} on {aws.endpoint_url} (moto; loopback only)", flush=True)
        for key, value in environ.items():
            print(f"export {key}={value}", flush=True)
        if not serve_forever:
            _RUNNING[aws.endpoint_url] = aws  # stopped by local_aws_down, or with the process
            kept = True
            return environ
        print("# serving; Ctrl-C stops the emulator (its state is in memory and goes with it)", file=sys.stderr)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        if not serve_forever:
            raise
        return environ
    finally:
        if not kept:
            aws.stop()


def local_aws_down(endpoint_url: str) -> None:
    """Stops an emulator started by `local_aws_up(serve_forever=False)` in this process."""
    aws = _RUNNING.pop(endpoint_url, None)
    if aws is not None:
        aws.stop()
