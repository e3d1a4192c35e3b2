# The sample app (with loadtui's launcher and stats helper) for compose.yaml.
FROM python:3.11-slim
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY src ./src
COPY sample_app ./sample_app
RUN pip install --no-cache-dir . && useradd --system --no-create-home app
# The app needs no privilege: it runs as a system user, not root.
USER app
EXPOSE 8000
CMD ["python", "-m", "sample_app", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
