"""Marks each ported test as tests/conformance/expectations.py says."""

from pathlib import Path

from tests.conformance import expectations

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.path))
        if HERE not in path.parents:
            continue
        key = item.nodeid.split("tests/conformance/", 1)[-1]
        expectations.mark(item, key)
