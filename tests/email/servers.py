"""A real IMAP server (Debian's dovecot) and a real SMTP sink (aiosmtpd) on loopback.

dovecot runs from a generated ~25-line config in a temporary folder: passwd-file auth,
a static userdb, Maildir storage, plaintext IMAP on 127.0.0.1 only. Mail is delivered
by writing Maildir files (what an MDA does), so a test can fill a mailbox fast and add
mail while the gateway is connected. The SMTP sink records every mail it accepts and can
also deliver it into a local mailbox, so a reply can be read back over IMAP.
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.services import free_port

CONFIG = """\
instance_name = kefu-test-{instance}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
mail_location = maildir:{root}/mail/%u
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    root: Path
    port: int
    users: dict[str, str]
    uid: int
    gid: int

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        base = self.root / "mail" / user
        return base if folder == "INBOX" else base / f".{folder}"

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> Path:
        """Drop a message into the user's Maildir, as an MDA does (tmp/ then rename to new/)."""
        box = self.maildir(user, folder)
        for path in (self.root / "mail" / user, box, box / "tmp", box / "new", box / "cur"):
            if not path.exists():
                path.mkdir(parents=True, exist_ok=True)
                os.chown(path, self.uid, self.gid)  # dovecot's mail processes own the store
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.kefu"
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        final = box / "new" / name
        tmp.rename(final)
        return final

    def imap_section(self, user: str, folder: str = "INBOX") -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "ssl": False, "username": user, "password": self.users[user], "folder": folder}


@contextmanager
def dovecot_server(users: dict[str, str]) -> Iterator[Dovecot]:
    """Start dovecot in a fresh folder of its own (dovecot's unprivileged auth and mail
    processes must be able to traverse it, which pytest's 0700 tmp folders forbid)."""
    root = Path(tempfile.mkdtemp(prefix="kefu-dovecot-"))
    root.chmod(0o711)
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        raise RuntimeError("dovecot not found (bash .ci/install-email.sh)")
    pw = pwd.getpwnam("dovecot")
    port = free_port()
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
    for path in (root / "mail", root / "home"):
        os.chown(path, pw.pw_uid, pw.pw_gid)
    conf = root / "dovecot.conf"
    conf.write_text(CONFIG.format(root=root, port=port, uid=pw.pw_uid, gid=pw.pw_gid, instance=uuid.uuid4().hex[:8]))
    proc = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("dovecot did not listen")
            time.sleep(0.02)
        yield Dovecot(root=root, port=port, users=users, uid=pw.pw_uid, gid=pw.pw_gid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SmtpSink:
    """Every mail accepted over SMTP, parsed, plus an optional local delivery."""

    port: int = 0
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    deliver_to: Dovecot | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd handler hook
        raw = bytes(envelope.original_content or envelope.content)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self._cond:
            self.messages.append(msg)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._cond.notify_all()
        if self.deliver_to is not None:
            for rcpt in envelope.rcpt_tos:
                user = rcpt.split("@", 1)[0]
                if user in self.deliver_to.users:
                    self.deliver_to.deliver(user, raw)
        return "250 OK"

    def wait(self, count: int, timeout_s: float = 15.0) -> list[Message]:
        """Blocking wait (call it through asyncio.to_thread from a test)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, timeout_s)
            return list(self.messages)


@contextmanager
def smtp_sink(deliver_to: Dovecot | None = None) -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port(), deliver_to=deliver_to)
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
