"""The directory the API's uvicorn processes share their Prometheus counts through
(api/metrics.py). Kept free of prometheus_client: the variable must be set before that is
imported (an app built without it counts in its own process only, api/metrics.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.settings import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_api_metrics_dir(settings: Settings, port: int) -> Path:
    """An empty directory for this run's counts (PROMETHEUS_MULTIPROC_DIR when set, else
    `metrics/api-PORT` under the data directory: two APIs on one data directory, on their own
    ports, keep apart), named in the environment every uvicorn process inherits. Emptied because
    files of a run that ended would be summed into this one's counts."""
    directory = Path(os.environ.get(ENV) or settings.data_dir / "metrics" / f"api-{port}").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)
    return directory
