"""The UI a person opens: the workspace loads in a real webserver and lists the lineage."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSET_KEYS_QUERY = '{"query": "{ assetNodes { assetKey { path } } }"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webserver_serves_the_workspace_lineage(tmp_path):
    port = free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    env = {"DAGSTER_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql", data=ASSET_KEYS_QUERY.encode(),
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    body = json.load(response)
                nodes = body["data"]["assetNodes"]
                if nodes:
                    break
            except (OSError, KeyError):
                pass
            assert proc.poll() is None, "webserver exited"
            assert time.monotonic() < deadline, "webserver did not serve the workspace in 90 s"
            time.sleep(1)
        keys = {tuple(n["assetKey"]["path"]) for n in nodes}
        assert {("incoming_dicom",), ("dicom_metadata",), ("deidentified_dicom",)} <= keys
    finally:
        proc.terminate()
        proc.wait(timeout=30)
