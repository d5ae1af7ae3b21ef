"""`kefu admin create-user` / `reset-password`: the first user, password piped on stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from admin.users import _verify


def kefu(*args: str, stdin: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.no_blockbuster
def test_create_user_and_reset_password_from_a_script(tmp_path: Path, redis_url: str, mongo_url: str) -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update(KEFU_MONGO_URL=mongo_url, KEFU_REDIS_URL=redis_url, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = kefu("admin", "create-user", "root", "--role", "admin", stdin="first password 1\n", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout and "first password" not in done.stdout + done.stderr
    again = kefu("admin", "create-user", "root", "--role", "admin", stdin="first password 1\n", cwd=tmp_path, env=env)
    assert again.returncode == 2 and "exists already" in again.stderr
    short = kefu("admin", "create-user", "tiny", "--role", "agent", stdin="short\n", cwd=tmp_path, env=env)
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    done = kefu("admin", "reset-password", "root", stdin="second password 2\n", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    client: MongoClient[Any] = MongoClient(mongo_url)
    try:
        db = client.get_default_database()
        doc = db["console_users"].find_one({"_id": "root"})
        assert doc is not None and doc["role"] == "admin" and doc["password"].startswith("$argon2id$")
        assert _verify(doc["password"], "second password 2") and not _verify(doc["password"], "first password 1")
        assert db["console_users"].find_one({"_id": "tiny"}) is None
        actions = [e["action"] for e in db["console_audit"].find({}).sort("at", 1)]
        assert actions == ["user.create", "user.reset_password"]
    finally:
        client.drop_database(client.get_default_database().name)
        client.close()
