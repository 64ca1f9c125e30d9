"""The Dagster UI (`doudi ui`) starts on localhost and lists the assets, their quarter partitions and
their checks (asked through its GraphQL endpoint), and logs no warning while it starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.partitions import FIRST_QUARTER, quarter_key

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
    port = _free_port()
    log = (tmp_path / "webserver.log").open("w")
    # `doudi ui` as an operator starts it (webserver and daemon), from the repository, on a
    # fresh DAGSTER_HOME; its own process group, so that the test stops Dagster's children too.
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port)],
        cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
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
        yield port, tmp_path / "webserver.log"
    finally:
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


# A real webserver and daemon: about 75 s, most of it their shutdown; run with `pytest -m slow`
# (the definitions it lists are held by the snapshot in test_definitions.py).
@pytest.mark.slow
def test_ui_lists_assets_partitions_and_checks(webserver):
    port, log = webserver
    data = _graphql(
        port,
        "{ assetNodes { assetKey { path } isPartitioned partitionKeysByDimension { partitionKeys } "
        "assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }",
    )["data"]["assetNodes"]
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data}
    assert {"staging/medical", "linked/matches", "rules/ineligibility", "marts/warnings", "exports/report"} <= set(nodes)
    assert all(n["isPartitioned"] for n in nodes.values())
    quarters = nodes["marts/warnings"]["partitionKeysByDimension"][0]["partitionKeys"]
    assert quarter_key("2025Q3") in quarters and quarters[0] == quarter_key(FIRST_QUARTER)  # grows from the first quarter
    checks = {c["name"]: c["blocking"] for c in nodes["staging/medical"]["assetChecksOrError"]["checks"]}
    assert checks == {"delivery_accepted": True, "value_quality": False}
    # Loading the definitions (done by the query above) logs no warning on a fresh instance.
    warned = [line for line in log.read_text().splitlines() if "warning" in line.lower()]
    assert not warned, warned
