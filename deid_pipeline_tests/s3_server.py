"""A real S3-compatible endpoint on loopback for the tests: moto's server mode, one per session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from dagster_aws.s3 import S3Resource

REGION = "us-east-1"
# moto accepts any credentials; fixed ones keep boto3 from looking for real ones.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            **CREDENTIALS)

    def resource(self) -> S3Resource:
        return S3Resource(endpoint_url=self.endpoint_url, region_name=REGION, **CREDENTIALS)

    def environment(self) -> dict[str, str]:
        """What a process needs to reach this endpoint through boto3's own configuration."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    port = free_port()
    moto_server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, "moto_server exited"
                assert time.monotonic() < deadline, f"moto_server not up in {START_TIMEOUT_S} s"
                time.sleep(0.2)
        yield S3Server(endpoint)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def s3(s3_server) -> S3Server:
    """The server emptied of every bucket an earlier test made."""
    reset = urllib.request.Request(f"{s3_server.endpoint_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    return s3_server
