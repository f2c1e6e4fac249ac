# Poise: the dashboard (`poise ui`) and the collectors (`poise sync`) in one image.
#   docker build -t poise .
#   docker run --rm poise --help
# No secret is baked in: tokens, the database password and the sign-in secrets come from the
# environment at run time (compose.yaml, deploy/k8s/). See docs/deployment.md.
FROM python:3.12-slim

# git: the local Git collector; Pango and fonts: PDF reports (WeasyPrint).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        git libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POISE_CONFIG=/config/poise.yaml

WORKDIR /app
# Dependencies first (pinned by requirements.lock), so a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY poise ./poise
COPY collectors ./collectors
COPY metrics ./metrics
COPY dashboard ./dashboard
COPY reports ./reports
RUN pip install --no-deps .
# The dashboard's pages are scripts Streamlit runs from beside app.py.
COPY app.py ./
COPY pages ./pages
COPY .streamlit/config.toml ./.streamlit/config.toml

RUN useradd --create-home --uid 10001 --user-group poise \
    && mkdir -p /config /data \
    && chown poise:poise /data
USER 10001:10001
ENV HOME=/home/poise

EXPOSE 8501
# Streamlit's own liveness endpoint; the sync service has no server and turns this off.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

ENTRYPOINT ["poise"]
CMD ["ui", "--address", "0.0.0.0", "--port", "8501"]
