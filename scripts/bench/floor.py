"""The floor: a trivial FastAPI `def` endpoint, served like the service, so every scenario
can be read as a share of what this stack does with no work at all."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/floor")
def floor() -> dict[str, bool]:
    return {"ok": True}
