"""The connection flood as a Cloud Run Job task: the same flood, configured by its
environment, run by `python -m chaoskit.targets.flood.cloud_run_task` in the image
`deploy/flood-job/Dockerfile` builds.

The execution's tasks share FLOOD_CONNECTIONS connections to FLOOD_DSN (from Secret
Manager): each opens its share (CLOUD_RUN_TASK_INDEX of CLOUD_RUN_TASK_COUNT), holds
them FLOOD_HOLD_S seconds, and releases them; cancelling the execution sends SIGTERM,
which releases them at once. Each task prints one JSON line when ramped and one when
released, which Cloud Logging keeps and `start_cloud_run_flood` reads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal

from chaoskit.targets.flood.worker import ConnectionFlood


def task_share(total: int, index: int, count: int) -> int:
    """Connections task `index` of `count` opens, so that the tasks open `total` in all."""
    return total // count + (1 if index < total % count else 0)


async def main() -> None:
    index = int(os.environ.get("CLOUD_RUN_TASK_INDEX", "0"))
    count = int(os.environ.get("CLOUD_RUN_TASK_COUNT", "1"))
    params = {
        "target_dsn": os.environ["FLOOD_DSN"],
        "connections": task_share(int(os.environ["FLOOD_CONNECTIONS"]), index, count),
        "ramp_s": float(os.environ.get("FLOOD_RAMP_S", "0")),
        "connect_timeout_s": float(os.environ.get("FLOOD_CONNECT_TIMEOUT_S", "35")),
        "concurrency": int(os.environ.get("FLOOD_CONCURRENCY", "64")),
        "application_name": f"{os.environ['FLOOD_APPLICATION_NAME']}-{index}",
    }
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    flood = ConnectionFlood(params)
    print(json.dumps({"event": "ramped", "task": index, **await flood.ramp()}), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), float(os.environ.get("FLOOD_HOLD_S", "300")))
    print(json.dumps({"event": "released", "task": index, **await flood.release()}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
