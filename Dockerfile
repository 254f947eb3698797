FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so source edits don't reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# README.md and the licence are the package's metadata: the wheel carries both.
COPY README.md LICENSE *openapi.yaml hatch_build.py ./
COPY cms_mock ./cms_mock
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 cms \
    && mkdir -p /app/data \
    && chown cms:cms /app/data

USER cms
ENV HOST=0.0.0.0 \
    DATA_DIR=/app/data
VOLUME ["/app/data"]
EXPOSE 3001 8000

# Probes PORT: set it when the container serves another port than 3001 (the profile service's 8000).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3001'), timeout=2)"

CMD ["cms-mock"]
