"""The newcomer's path: `kefu run` with embedded defaults, then `kefu simulate`."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.services import free_port


def kefu(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.no_blockbuster
def test_embedded_demo_run_and_simulate(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env["KEFU_HTTP_PORT"] = str(free_port())
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    # The demo without NLU (as `KEFU_SKIP_NLU=1 bash scripts/run.sh`): no 2.7 GB Rasa
    # install and training in the background (tests/conversation/test_first_training.py).
    env["KEFU_SKIP_NLU"] = "1"
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while b"gateway ready" not in (tmp_path / "run.log").read_bytes():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)
        time.sleep(0.3)
        done = kefu("simulate", "wechat", "--account", "demo", "--text", "你好", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        assert "你好" in done.stdout and "收到" in done.stdout
        welcome = kefu("simulate", "wechat", "--event", "subscribe", "--sender", "oNew", cwd=tmp_path, env=env)
        assert "欢迎" in welcome.stdout
        chat = subprocess.run(
            [sys.executable, "-m", "bot.cli", "simulate", "chat", "--channel", "wechat", "--sender", "oChatter"],
            cwd=tmp_path, env=env, input="hello there\n\n", capture_output=True, text=True, timeout=60,
        )
        assert chat.returncode == 0, chat.stderr
        assert "bot> We received your message" in chat.stdout
        unknown = kefu("simulate", "wechat", "--account", "nope", "--text", "x", cwd=tmp_path, env=env)
        assert unknown.returncode == 2 and "nope" in unknown.stderr
        # The demo prints an API key that opens the hand-off API.
        key = re.search(r"API key \(every scope, kept in var/demo-api-key\): (\S+)", (tmp_path / "run.log").read_text()).group(1)  # type: ignore[union-attr]
        assert (tmp_path / "var" / "demo-api-key").read_text().strip() == key
        url = f"http://127.0.0.1:{env['KEFU_HTTP_PORT']}/api/conversations/waiting"
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"}), timeout=10) as resp:
            assert resp.status == 200 and "waiting" in json.loads(resp.read())
        # ... and console logins, one per role, that sign in.
        password = re.search(r"users admin, agent, marketer, password (\S+)", (tmp_path / "run.log").read_text()).group(1)  # type: ignore[union-attr]
        assert (tmp_path / "var" / "demo-console-password").read_text().strip() == password
        assert _console_sign_in(int(env["KEFU_HTTP_PORT"]), "agent", password) == "/admin/"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
        log.close()
    # Data stayed under ./var and the embedded servers went away with the gateway.
    assert (tmp_path / "var" / "redis" / "appendonlydir").exists() or (tmp_path / "var" / "redis").exists()
    assert (tmp_path / "var" / "mongo").exists()
    text = (tmp_path / "run.log").read_text()
    assert "embedded redis stopped" in text and "embedded mongo stopped" in text
    assert "demo-app-secret" not in text  # secrets never logged


def _console_sign_in(port: int, name: str, password: str) -> str:
    """Sign in as a browser would; where the console sends the user afterwards."""
    import http.cookiejar
    import urllib.parse

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kw: object) -> None:
            return None  # see the redirect itself

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), Keep)
    base = f"http://127.0.0.1:{port}/admin"
    page = opener.open(base + "/signin", timeout=10).read().decode()
    token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode({"name": name, "password": password, "next": "/admin/", "_csrf": token}).encode()
    try:
        opener.open(base + "/signin", data=form, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 303, exc.code
        return str(exc.headers["Location"])
    raise AssertionError("sign-in did not redirect")


@pytest.mark.no_blockbuster
def test_config_show_hides_secrets(tmp_path: Path) -> None:
    (tmp_path / "kefu.yml").write_text("channels:\n  wechat:\n    - {account: a, app_id: wx1, app_secret: VERYSECRET, token: TOKENSECRET}\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = kefu("config", "show", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "VERYSECRET" not in done.stdout and "TOKENSECRET" not in done.stdout
    assert '"account": "a"' in done.stdout


@pytest.mark.no_blockbuster
def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "kefu.yml").write_text("channels:\n  wechat:\n    - {account: a, token: t}\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env["KEFU_HTTP_PORT"] = str(free_port())
    done = kefu("run", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "kefu: channels.wechat[a]: missing app_id, app_secret" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.no_blockbuster
def test_simulate_without_gateway_is_one_clear_line(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = kefu("simulate", "wechat", "--text", "x", "--url", f"http://127.0.0.1:{free_port()}", cwd=tmp_path, env=env)
    assert done.returncode == 1 and "simulation failed" in done.stderr and "Traceback" not in done.stderr


def test_global_options_are_accepted_after_the_subcommand(tmp_path: Path) -> None:
    from bot.cli import build_parser

    config = str(tmp_path / "kefu.yml")
    for argv in (["--config", config, "run", "--port", "9"], ["run", "--config", config, "--port", "9"], ["-v", "run", "--config", config]):
        args = build_parser().parse_args(argv)
        assert args.config == config and args.command == "run"
    assert build_parser().parse_args(["run", "-v"]).verbose is True
    assert build_parser().parse_args(["run"]).config is None
    shown = build_parser().parse_args(["config", "show", "--config", config])
    assert shown.config == config
    # A sub-command with a --config of its own keeps its meaning.
    nlu = build_parser().parse_args(["nlu", "--config", config, "train"])
    assert nlu.nlu_config == config


def test_every_sub_command_package_of_ours_is_registered() -> None:
    from bot.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    # Each of our command modules adds its own group; none may silently go missing.
    assert {"nlu", "speech", "reviews", "kb", "admin"} <= set(commands.choices)
