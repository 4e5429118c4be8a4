"""Run the reference service: `python -m chaoskit.testbed.service` (settings from SERVICE_*).

Exit codes: 0 after a clean shutdown, 3 when the startup failed (uvicorn's own
STARTUP_FAILURE), 2 when a setting is invalid (one line on stderr says which).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import uvicorn

from chaoskit.testbed.service.app import create_app
from chaoskit.testbed.service.settings import ServiceSettings, SettingsError

_PARENT_GONE_GRACE_S = 5.0


def _exit_with_parent() -> None:
    """Stop when stdin closes: the process that started us has gone."""

    def watch() -> None:
        # raw reads: a daemon thread blocked in buffered stdin aborts interpreter exit
        while os.read(0, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(_PARENT_GONE_GRACE_S)
        os._exit(1)  # a startup phase still holds on: do not outlive the parent

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main() -> None:
    try:
        settings = ServiceSettings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if os.environ.get("SERVICE_EXIT_WITH_PARENT") == "1":
        _exit_with_parent()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
