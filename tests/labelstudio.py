"""A real Label Studio server, started once per test session on loopback and stopped by its PID.

Set DISTILLOOP_LABEL_STUDIO to the `label-studio` executable of its own virtualenv (``make test`` does:
``python3 -m venv .ls-venv && .ls-venv/bin/pip install label-studio``); without it the tests that need the
server are skipped with that reason. The fixture is registered in ``tests/conftest.py``.
"""


from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

#: settings Label Studio would otherwise read from a developer's environment (see ENVIRONMENT traps)
_STRAY = ("PORT", "HOST", "USERNAME", "PASSWORD", "DEBUG", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_URL")


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    token: str
    username: str
    password: str
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str, token: str) -> bool:
    req = urllib.request.Request(f"{url}/api/projects/", headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    exe = os.environ.get("DISTILLOOP_LABEL_STUDIO")
    if not exe or not Path(exe).exists():
        pytest.skip("no Label Studio server: set DISTILLOOP_LABEL_STUDIO to the `label-studio` executable of its own "
                    "virtualenv (python3 -m venv .ls-venv && .ls-venv/bin/pip install label-studio)")
    base = tmp_path_factory.mktemp("label-studio")
    port = _free_port()
    token = "distilloop-test-token"
    password = "distilloop-test-pw"
    username = "reviewer@example.com"
    env = {k: v for k, v in os.environ.items() if k not in _STRAY}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(base / "data"), "DJANGO_DB": "sqlite",
        "LABEL_STUDIO_USERNAME": username, "LABEL_STUDIO_PASSWORD": password, "LABEL_STUDIO_USER_TOKEN": token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false",
        "SSRF_PROTECTION_ENABLED": "false",  # lets it call the webhook listener on 127.0.0.1
    })
    log = open(base / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([exe, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
                            cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while not _ready(url, token):
            if proc.poll() is not None:
                pytest.fail(f"Label Studio exited with {proc.returncode}; see {base / 'server.log'}")
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio not ready on {url} after 180 s; see {base / 'server.log'}")
            time.sleep(1)
        yield LabelStudioServer(url, token, username, password, proc.pid)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers only
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        log.close()


KEY_ENV = "DISTILLOOP_TEST_LS_KEY"

def answer_task(client, task_id: int, label: str, rationale: str | None = None, lead_time: float = 7.0):
    result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
    if rationale:
        result.append({"from_name": "rationale", "to_name": "text", "type": "textarea", "value": {"text": [rationale]}})
    return client.annotations.create(id=int(task_id), result=result, lead_time=lead_time)
