# Image for the API and the worker (docker-compose.yml runs both from this one build).
#
# The project is installed in editable mode from /app on purpose: templates/ and policy/ are
# top-level data directories found relative to the source tree
# (core/notifications/rendering.py and core/policy/loader.py use Path(__file__).parents[2]),
# so the packages must be imported from /app, not from a copy in site-packages.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 appeals \
    && useradd --system --uid 10001 --gid appeals --create-home --home-dir /home/appeals \
        --shell /usr/sbin/nologin appeals

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when the lock changes. requirements.lock
# pins every package (and setuptools, which installs the project below) to an exact version and
# its hashes: a file whose hash differs fails the build, and --no-deps means nothing is resolved
# at build time. scripts/lock-requirements.sh regenerates it (docs/operations.md).
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./

# The source tree, including the data directories read relative to it.
COPY core ./core
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY gateway ./gateway
COPY launcher ./launcher
COPY templates ./templates
COPY policy ./policy
# Bytecode written once here (PYTHONDONTWRITEBYTECODE and a tree the app user cannot write
# would otherwise leave every process, and the workflow sandbox on every workflow run,
# compiling the source again).
RUN pip install --no-deps --no-build-isolation -e . \
    && python -m compileall -q core workflows activities api gateway launcher \
    && mkdir -p /app/.data \
    && chown appeals:appeals /app/.data

USER appeals

# `appeals api` binds APPEALS_API_HOST, which defaults to 127.0.0.1: unreachable from outside
# a container. APPEALS_API_WORKERS uvicorn processes share the port; about one per core given
# to the container (override it with the container's CPU limit).
ENV APPEALS_API_HOST=0.0.0.0 \
    APPEALS_API_PORT=8000 \
    APPEALS_API_WORKERS=2
EXPOSE 8000

# Liveness of the default command, the API (no I/O behind it: /health/live). docker-compose.yml
# gives each service its own: readiness for the API, /health for the codec server, the SDK
# metrics endpoint for the worker.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('APPEALS_API_PORT', '8000'), timeout=4)"]

CMD ["appeals", "api"]
