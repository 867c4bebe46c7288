# One image runs every role: `serve` (default CMD), `worker` and `migrate`.
# Build from the repository root:  docker build -t recorder-service:local .

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: resolve the locked dependencies into /opt/venv ---------------------------
FROM ${PYTHON_IMAGE} AS builder

# uv comes from PyPI (same version as the lockfile was written with), not from a
# container registry, so the build only needs PyPI and the Debian/Python base image.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
# binutils for `strip` (below); the builder only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*

# The service runs with PYTHONOPTIMIZE=2 (runtime stage, below): docstrings and asserts are
# not loaded, ~7 MB less resident memory (docs/performance.md, "Memory"). Bytecode is compiled
# for that level only, once everything is installed and pruned (end of this stage).
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_COMPILE_BYTECODE=0 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PYTHONOPTIMIZE=2

WORKDIR /src

# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project

# Then the project itself, installed as a regular (non-editable) wheel.
COPY README.md ./
COPY recorder_service ./recorder_service
COPY migrations ./migrations
RUN uv sync --frozen --no-dev --no-editable

# The wheel holds only the package; `recorder-service migrate` looks for migrations/
# inside the installed package first (adapters/db/migrate.py), so put it there.
# `python -I` keeps /src (the cwd) off sys.path, so the *installed* package is found.
RUN /opt/venv/bin/python -I -c "import pathlib, shutil, recorder_service as p; \
shutil.copytree('migrations', pathlib.Path(p.__file__).parent / 'migrations', \
ignore=shutil.ignore_patterns('__pycache__'))" \
 && cd / \
 && /opt/venv/bin/python -I -c "from recorder_service.adapters.db.migrate import migrations_dir; \
import compileall, sys; d = migrations_dir(); print(d); \
sys.exit(not (d.parent.parent.name == 'site-packages' and compileall.compile_dir(d, quiet=1, optimize=2)))" \
 && /opt/venv/bin/recorder-service --help > /dev/null

# Drop what the service never needs (deploy/README.md, "Image size"): faker and polyfactory
# (Litestar's OpenAPI example generator; app.py leaves create_examples off); rich, rich-click,
# markdown-it-py, mdurl and pygments (the command-line tools of Litestar and httpx; httpx
# imports its own only when they are installed); botocore's models of every AWS service but
# S3 and the credential chain's STS/SSO (the top-level endpoint, partition, retry and defaults
# files stay); test suites; type stubs; the debug symbols of compiled extensions (uvloop's
# alone are 12 MB; the wheels' bundled libraries in *.libs come stripped and are left alone).
# Then make sure the web stack still imports and an S3 and an STS client still load.
RUN uv pip uninstall --python /opt/venv/bin/python \
      faker polyfactory rich rich-click markdown-it-py mdurl pygments \
 && cd /opt/venv/lib/python3.11/site-packages \
 && find botocore/data -mindepth 1 -maxdepth 1 -type d \
      ! -name s3 ! -name sts ! -name sso ! -name sso-oidc -exec rm -rf {} + \
 && find . -depth -type d -name tests -exec rm -rf {} + \
 && find . -name '*.pyi' -delete \
 && find . -name '*.so' -type f ! -path '*.libs/*' -exec strip --strip-unneeded {} + \
 && cd / \
 && /opt/venv/bin/python -I -c "import httpx, litestar, uvicorn, botocore.session as b; s = b.get_session(); \
[s.create_client(n, region_name='us-east-1') for n in ('s3', 'sts', 'sso', 'sso-oidc')]" \
 && /opt/venv/bin/python -m compileall -q -j 0 -o 2 /opt/venv/lib/python3.11/site-packages

# --- runtime: slim, no compilers, no uv, non-root ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# tini (Debian package, /usr/bin/tini) is PID 1: forwards SIGTERM to the service so
# uvicorn drains, and reaps zombies. uvicorn re-raises SIGTERM once it has drained, so the
# service ends "killed by SIGTERM" (143); `-e 143` reports that orderly stop as exit 0.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

# Fixed uid/gid so Kubernetes `runAsUser`/`fsGroup` and volume ownership line up.
RUN groupadd --system --gid 10001 recorder \
 && useradd --system --uid 10001 --gid recorder --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin recorder \
 && mkdir -p /data \
 && chown recorder:recorder /data

COPY --from=builder /opt/venv /opt/venv

# RECORDER_DATABASE_URL defaults to SQLite on the /data volume (single replica only);
# deployments set it to postgresql+psycopg://... . Everything else: see docs/api.md §2.
# PYTHONOPTIMIZE=2: see the builder stage; the bytecode in /opt/venv is compiled for it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=2 \
    RECORDER_DATABASE_URL=sqlite+aiosqlite:////data/recorder.db

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000

# slim has no curl; urlopen raises (exit 1) on a refused connection or a non-2xx answer.
# Only meaningful for `serve`: the worker and migrate roles disable it (compose) or
# ignore it (Kubernetes uses its own probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "-e", "143", "--"]
CMD ["recorder-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
