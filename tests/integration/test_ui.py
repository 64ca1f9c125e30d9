"""The Dagster UI starts on localhost and lists the assets, their quarter partitions and
their checks (asked through its GraphQL endpoint)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture()
def webserver(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env={**__import__("os").environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail("the Dagster webserver exited")
                time.sleep(1)
        else:
            pytest.fail("the Dagster webserver did not start within 120 s")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_ui_lists_assets_partitions_and_checks(webserver):
    data = _graphql(
        webserver,
        "{ assetNodes { assetKey { path } isPartitioned partitionKeysByDimension { partitionKeys } "
        "assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }",
    )["data"]["assetNodes"]
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data}
    assert {"staging/medical", "linked/matches", "rules/ineligibility", "marts/warnings", "exports/report"} <= set(nodes)
    assert all(n["isPartitioned"] for n in nodes.values())
    assert "2025Q3" in nodes["marts/warnings"]["partitionKeysByDimension"][0]["partitionKeys"]
    checks = {c["name"]: c["blocking"] for c in nodes["staging/medical"]["assetChecksOrError"]["checks"]}
    assert checks == {"delivery_accepted": True, "value_quality": False}
