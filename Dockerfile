# The production image: locked dependencies, then the package, in a slim non-root image.
#
# Layers go from what changes least to what changes most: the locked dependencies
# (requirements.lock, installed with their hashes) come before the code, so a code change
# rebuilds only the last layers and reinstalls nothing else.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY carriers ./carriers
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 monitor
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock && rm /tmp/requirements.lock
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-deps /tmp/*.whl && rm /tmp/*.whl
# The image's configuration is the production example: real carriers, PostgreSQL, secrets from
# the environment. Started without them it says which variable to set, instead of quietly
# watching the sandbox carrier. Mount your own file over it (see compose.yaml).
COPY config/production.example.toml /etc/parcel-monitor/config.toml
RUN mkdir -p /var/lib/parcel-monitor && chown monitor:monitor /var/lib/parcel-monitor
USER monitor
ENV PARCEL_MONITOR_CONFIG=/etc/parcel-monitor/config.toml \
    PARCEL_MONITOR_LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/parcel-monitor"]
EXPOSE 8080
# /healthz answers while the process runs; orchestrators should use /readyz for traffic.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["parcel-monitor"]
# `run` migrates the schema, then serves; `docker run … run --demo` shows the demo instead.
CMD ["run"]
