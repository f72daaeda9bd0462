"""The directory the API's uvicorn processes share their Prometheus counts through
(api/metrics.py). Kept free of prometheus_client: the variable must be set before that is
imported (an app built without it counts in its own process only, api/metrics.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.settings import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_api_metrics_dir(settings: Settings) -> Path:
    """An empty directory for this run's counts (PROMETHEUS_MULTIPROC_DIR when set, else
    `metrics/api` under the data directory), named in the environment every uvicorn process
    inherits. Emptied because files of a run that ended would be summed into this one's counts;
    so two `appeals api` runs must not share it (the data directory, or set the variable)."""
    directory = Path(os.environ.get(ENV) or settings.data_dir / "metrics" / "api").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)
    return directory
