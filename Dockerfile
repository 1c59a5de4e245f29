# feedsvc: installs the package the way the README does (pip install .) and runs
# `feedsvc serve`. Mount your notes at /notes and keep the store on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    FEEDSVC_CONFIG=/app/config/docker.toml \
    FEEDSVC_STORE_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends git curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY feedsvc ./feedsvc
RUN pip install --no-cache-dir .
COPY config ./config
COPY examples ./examples
RUN printf '[site]\nbase_url = "http://localhost:8080/"\n\n[[sources]]\nname = "notes"\npath = "/notes"\n' \
        > /app/config/docker.toml \
    && mkdir -p /data /notes && cp -r examples/notes/. /notes/ \
    && chown -R 65534:65534 /data
USER 65534
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["feedsvc", "serve", "--host", "0.0.0.0", "--port", "8080"]
