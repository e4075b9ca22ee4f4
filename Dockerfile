# The serverless-ml apps (predictor, monitoring dashboard, models page) in one image, served by Voila on
# 0.0.0.0:$PORT (7860 by default, what a Hugging Face Docker Space expects). See "Publish the apps" in README.md.
#
#   make image                                   # podman or docker build, FROM python:3.11-slim
#   docker build -t serverless-ml .              # the same by hand
#   docker run -p 7860:7860 serverless-ml        # the demo: its own store, built with the image, read-only
#   docker run -p 7860:7860 -e SML_BACKEND=hopsworks -e HOPSWORKS_PROJECT=... -e HOPSWORKS_API_KEY=... serverless-ml
#
# Two modes, chosen by environment variables when the container starts:
# - the demo (default): the build ran the pipelines on the embedded store with the clock pinned (DEMO_NOW), so
#   the same commit builds the same store; the server's user can read that store but not write it;
# - SML_BACKEND=hopsworks with HOPSWORKS_API_KEY (a secret) and HOPSWORKS_PROJECT: the apps read your project.
# BASE_IMAGE is what users expect, python:3.11-slim; `make image-test` builds FROM a Debian 12 stand-in made
# from Debian's packages (image/build_base.sh), as no image registry is reachable where it runs.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# DEMO=0 skips the demo store (an image for SML_BACKEND=hopsworks only); DEMO_DAYS of DEMO_ROWS rows a dataset.
ARG DEMO=1
ARG DEMO_NOW=2026-12-01T06:00:00Z
ARG DEMO_DAYS=30
ARG DEMO_ROWS=100

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    JUPYTER_PREFER_ENV_PATH=1 \
    PYDEVD_DISABLE_FILE_VALIDATION=1 \
    SML_ROOT=/app \
    SML_HOME=/app/demo/store \
    SML_OUTPUTS=/app/demo/outputs \
    PORT=7860 \
    BASE_URL=/

# The server's user: uid 1000, as Hugging Face runs a Space's container. It owns nothing it serves.
RUN useradd --create-home --uid 1000 --user-group --shell /bin/sh app \
 && python3 -m venv --without-pip /opt/venv

# The runtime lock only: what the pipelines and the apps need, every file hash-checked, wheels only
# (no JupyterLab, pytest, Playwright, ruff, mutmut or nbdev; `make lock` writes it from pyproject.toml).
# Installed by the base image's pip into a venv without pip of its own (35 MB less). --no-compile: the
# bytecode of what is imported is written below, not of every module (300 MB more). The packages' own test
# suites go (45 MB: pandas', scipy's, numpy's...): nothing imports them.
# PIP_CERT: the system's CA bundle, which a build behind a TLS proxy may mount over the image's.
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN PIP_CERT=/etc/ssl/certs/ca-certificates.crt /usr/local/bin/python3 -m pip --python /opt/venv/bin/python install --quiet \
      --require-hashes --no-deps --no-compile --only-binary=:all: -r /tmp/requirements-runtime.lock \
 && rm /tmp/requirements-runtime.lock \
 && find /opt/venv/lib/python3.11/site-packages -depth -type d -name tests -exec rm -rf {} + \
 && /opt/venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (serverless-ml)"

# The project: the library, the stage notebooks, the apps and their server settings (.dockerignore keeps out
# the rest). The library is found by a .pth file, as an editable install would, with nothing to build.
WORKDIR /app
COPY lib/ lib/
COPY notebooks/ notebooks/
COPY image/warm_imports.py image/warm_imports.py
RUN echo /app/lib > /opt/venv/lib/python3.11/site-packages/serverless_ml.pth

# Compile to bytecode, once, what a kernel and the server import (the server's user cannot write it, and
# with PYTHONDONTWRITEBYTECODE every kernel would compile every module again: seconds of CPU each). Only the
# imported modules: compiling the whole venv would add about 300 MB.
RUN PYTHONDONTWRITEBYTECODE= python image/warm_imports.py

# The demo store: feature and training stages, then DEMO_DAYS days of daily rows and batch inference, with
# the run's clock pinned, so the same commit gives the same rows, models and predictions. Then read-only:
# owned by root, readable by all, writable by none but root.
RUN if [ "$DEMO" = 1 ]; then \
      SML_NOW="$DEMO_NOW" PYTHONDONTWRITEBYTECODE= python -m serverless_ml.runs.cli run --days "$DEMO_DAYS" \
        --rows "$DEMO_ROWS" --no-fail-on-alert \
   && chmod -R a-w,a+rX /app/demo; \
    fi \
 && chmod -R a-w,a+rX /app/lib /app/notebooks

USER 1000:1000
EXPOSE 7860

# The index page answers only once every app has a preheated kernel (serve.py opens the port then).
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s%s' % (os.environ.get('PORT', '7860'), os.environ.get('BASE_URL', '/')), timeout=4)"

# exec: the server becomes PID 1 and gets SIGTERM, so a stop shuts its kernels down at once.
CMD exec python notebooks/apps_server/serve.py notebooks/apps --no-browser --port="$PORT" --Voila.ip=0.0.0.0 \
      --Voila.config_file_paths=notebooks/apps_server --Voila.base_url="$BASE_URL"
