# One image for the API and the workers; the GPU worker adds the model stack (see README).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DOCKET_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN pip install -e /app
RUN useradd --create-home --uid 1000 docket && mkdir -p /data && chown docket /data
USER docket
EXPOSE 8000
# gthread workers with many threads and a cap on event streams and waits (gunicorn.conf.py).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "api:create_app()"]
