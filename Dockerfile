FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY domain domain
COPY commands commands
COPY projections projections
COPY read_api read_api
COPY streams streams
COPY infra infra
RUN uv sync --frozen --no-dev && useradd --system shop && chown -R shop /app
USER shop
ENV PATH="/app/.venv/bin:$PATH"
EXPOSE 8000
CMD ["shop", "run", "--host", "0.0.0.0"]
