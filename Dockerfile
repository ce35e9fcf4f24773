# One image for every Tiercel service; compose.yaml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /opt/tiercel
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --no-create-home tiercel
CMD ["tiercel", "--help"]
