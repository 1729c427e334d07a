"""A mail relay as Microsoft 365 and most providers run one: STARTTLS required before
anything else, then AUTH (user `gatehouse`, password `relay-secret`), with a certificate from
a CA of its own. Prints READY, then one JSON line per message it accepts.

Usage: smtp_relay.py PORT CERT_PEM KEY_PEM
"""

import asyncio
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"to": envelope.rcpt_tos, "data": envelope.content.decode("utf-8", "replace")}), flush=True)
        return "250 2.0.0 queued"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"gatehouse"
        and auth_data.password == b"relay-secret"
    )
    return AuthResult(success=ok, handled=False)


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
        ready_timeout=10,
    )
    controller.start()
    print("READY", flush=True)
    # Runs until the test closes stdin (or is killed).
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
