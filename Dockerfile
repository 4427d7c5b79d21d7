# illhub in a container: `illhub schedule` harvests on the registry's schedules (and checks
# links weekly, backs up nightly) while `illhub serve --public` serves the catalog on port 8001.
# The catalog, its backups and the parsed-YAML cache live on the /data volume.
#
#   docker build -t illhub .
#   docker run -d --name illhub -p 8001:8001 -v illhub-data:/data illhub
#   docker logs -f illhub                      # the harvests' log
#   docker exec illhub illhub status           # how the last harvest went
#
# Your own registry: add -v "$PWD/registry.yaml:/app/registry.yaml:ro". docs/scheduling.md has more.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ILLHUB_DB=/data/illhub.db \
    ILLHUB_CACHE_DIR=/data/cache

WORKDIR /app
# The dependencies first (a layer kept while only the code changes), then the code.
COPY pyproject.toml setup.py README.md ./
COPY illhub/ illhub/
COPY harvesters/ harvesters/
COPY pipeline/ pipeline/
COPY catalog/ catalog/
COPY datasette_config/ datasette_config/
COPY data/taxonomy.yaml data/taxonomy.yaml
COPY registry.yaml scrapy.cfg ./
COPY deploy/ deploy/
RUN pip install -e . \
    && useradd --system --user-group --home-dir /data --no-create-home illhub \
    && mkdir -p /data && chown illhub:illhub /data

USER illhub
VOLUME ["/data"]
EXPOSE 8001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=60s --timeout=10s --start-period=30m \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/-/static/illhub.css', timeout=5)"
ENTRYPOINT ["/app/deploy/container.sh"]
