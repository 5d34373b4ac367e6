"""The no-op for Procrastinate's Django integration."""

from procrastinate.contrib.django import app


@app.task(name="noop")
def noop() -> None:
    return None
