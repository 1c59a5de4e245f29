# feedsvc: `feedsvc serve` on port 8080 as an unprivileged user, with the same config as
# `make run` (config/feedsvc.toml). Mount your notes at /notes and keep the store on /data;
# set FEEDSVC_SITE_BASE_URL to the public URL before the first start (README, "Container").
# BASE: any Debian-like image with python3 and pip (tests/test_container.py builds on a
# debootstrap stand-in, because CI reaches no registry).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
# git for `pull = "git"` sources. A mounted notes repository belongs to a host uid, not the
# container's: without safe.directory, git refuses it ("dubious ownership").
RUN if ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && git config --system --add safe.directory '*'

WORKDIR /app
# Dependencies first, from the lock file only: editing the source does not reinstall them.
# The PIP_* build args pass the builder's package index (and its trust) on; empty means PyPI.
ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_TRUSTED_HOST=
COPY requirements.lock ./
RUN for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do \
        eval "[ -n \"\$$v\" ]" || unset "$v"; \
    done \
    && pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY feedsvc ./feedsvc
RUN pip install --no-deps --no-build-isolation . && rm -rf build feedsvc.egg-info

# The very config `make run` uses; only paths and base_url come from the environment. Its
# source path ../examples/notes is a link to /notes, which holds the examples until a
# volume is mounted there.
COPY config ./config
COPY examples/notes /notes
COPY docker/entrypoint.sh /usr/local/bin/feedsvc-entrypoint
# /data: group 0, group-writable and setgid (the OpenShift convention), so the default user,
# `--user <any uid>` (group 0) and a new named volume (a copy of this folder) all can write.
RUN mkdir -p /app/examples /data \
    && ln -s /notes /app/examples/notes \
    && chown 65534:0 /data && chmod 2775 /data \
    && chmod 0755 /usr/local/bin/feedsvc-entrypoint
ENV FEEDSVC_CONFIG=/app/config/feedsvc.toml FEEDSVC_STORE_DATA_DIR=/data

USER 65534:0
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["feedsvc-entrypoint"]
CMD ["feedsvc", "serve", "--host", "0.0.0.0", "--port", "8080"]
