"""A real SMTP server for the mail tests, built on aiosmtpd.

Stores every accepted message as one file in <maildir>/new/, with an `X-RcptTo:` line
(the envelope recipients) before the raw message. Recipients whose local part starts
with "reject" get a permanent `550`, and `--auth USER:PASSWORD` makes AUTH mandatory
(PLAIN/LOGIN over plain text, as a local test relay). `--reply-delay-secs S` stores each
message and only then waits S seconds before answering "250 OK".

Run with the system interpreter: /usr/bin/python3 tests/support/smtp_server.py ...
"""

import argparse
import asyncio
import os
import signal
import threading
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class MaildirHandler:
    def __init__(self, maildir, reply_delay_secs):
        self.reply_delay_secs = reply_delay_secs
        self.new = os.path.join(maildir, "new")
        self.tmp = os.path.join(maildir, "tmp")
        os.makedirs(self.new, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex + ".eml"
        tmp = os.path.join(self.tmp, name)
        with open(tmp, "wb") as f:
            f.write(b"X-RcptTo: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        # Written aside and renamed, so a reader never sees half a message.
        os.rename(tmp, os.path.join(self.new, name))
        if self.reply_delay_secs:
            await asyncio.sleep(self.reply_delay_secs)
        return "250 OK: queued as " + name


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False makes aiosmtpd answer the failure (535) itself.
        return AuthResult(success=ok, handled=False)

    return authenticate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--auth", help="USER:PASSWORD; AUTH becomes mandatory")
    parser.add_argument("--reply-delay-secs", type=float, default=0.0)
    args = parser.parse_args()

    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs = dict(
            authenticator=authenticator_for(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    controller = Controller(
        MaildirHandler(args.maildir, args.reply_delay_secs), hostname="127.0.0.1", port=args.port, **kwargs
    )
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
