"""The reference endpoint of the product-detail benchmark: the cheapest thing FastAPI
serves (``async def`` returning a constant), under the same uvicorn settings as
``shop run``. ``python -m bench._constant_app PORT [WORKERS]`` serves it."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/constant")
async def constant() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    port, workers = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1
    uvicorn.run(
        "bench._constant_app:app" if workers > 1 else app,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
