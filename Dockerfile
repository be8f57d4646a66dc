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
    PYTHONUNBUFFERED=1
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=10s --retries=3 CMD ["parcel-monitor", "check-config"]
ENTRYPOINT ["parcel-monitor"]
CMD ["demo"]
