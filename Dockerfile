# The production image: the package built into a slim, non-root image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY carriers ./carriers
COPY monitor ./monitor
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 monitor
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
WORKDIR /app
COPY config ./config
RUN mkdir -p /app/data && chown monitor:monitor /app/data
USER monitor
ENV PARCEL_MONITOR_CONFIG=/app/config/default.toml \
    PARCEL_MONITOR_DATABASE_URL=sqlite:////app/data/parcel-monitor.db \
    PARCEL_MONITOR_LISTEN=0.0.0.0:8080 \
    PYTHONUNBUFFERED=1
VOLUME ["/app/data"]
EXPOSE 8080
# /healthz answers while the process runs; orchestrators should use /readyz for traffic.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["parcel-monitor"]
# The daemon; set PARCEL_MONITOR_API_TOKEN (and PARCEL_MONITOR_REFUND_SECRET) in the environment.
# `docker run … parcel-monitor run --demo` shows the demo instead.
CMD ["run"]
