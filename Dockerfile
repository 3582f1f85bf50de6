# min-object-storage: `mos serve` (Gunicorn, threaded workers) on port 5000.
# Settings are the MOS_* variables of README.md; compose.yaml runs it on MongoDB + GridFS.
# Not built here: there is no Docker engine on the development machines (docs/scaling.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A system user without a login shell owns the data dir; nothing else is writable for it.
RUN groupadd --system mos \
 && useradd --system --gid mos --home-dir /data --no-create-home --shell /usr/sbin/nologin mos \
 && mkdir /data \
 && chown mos:mos /data \
 && chmod 0700 /data

# Only what the build needs: pyproject.toml names README.md as the readme, the code is in src/.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . \
 && cd / \
 && rm -rf /build

WORKDIR /data
ENV MOS_HOST=0.0.0.0 \
    MOS_PORT=5000 \
    MOS_DATA_DIR=/data
# Declared after the chown above, so a new named volume starts out owned by mos.
VOLUME ["/data"]
EXPOSE 5000

USER mos

# Liveness with the standard library only (slim images have no curl); no proxy for localhost.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('MOS_PORT', '5000'), timeout=4).read()"]

# Gunicorn's master is PID 1 and handles SIGTERM with a graceful shutdown (30 s).
CMD ["mos", "serve"]
