#!/usr/bin/python3
"""A real SMTP server for Assent's mail tests (aiosmtpd, Debian's python3-aiosmtpd).

Every accepted message is saved as DIR/NNNNNN.json, written atomically:
  {"mail_from", "rcpt_tos", "tls", "auth_login", "raw",
   "max_line", "bare_lf", "headers": {name: [decoded values]},
   "parts": [{"content_type", "charset", "cte", "content"}]}
The decoding is Python's own email package (policy=default), so the tests
check Assent's MIME builder against an independent parser.

Behaviour is chosen by the local part of a recipient:
  reject*   RCPT answered 550 5.1.1         tempfail*  RCPT answered 451 4.3.0
  drop*     connection closed at RCPT        datafail*  DATA answered 554 5.6.0
  datatemp* DATA answered 452 4.3.1
and by the sender: blocked* -> MAIL answered 550 5.7.1.  While a file DIR/slow
exists, each message is saved and the 250 to DATA withheld for 60 s (a sender
killed meanwhile crashed after delivery but before it heard back).

  smtp_test_server.py --port P --dir D [--starttls CERT KEY] [--smtps CERT KEY]
                      [--auth USER PASSWORD]
  smtp_test_server.py --make-certs DIR   (CA + server certificate for 127.0.0.1
                      and localhost, and one for another host, via openssl)
  smtp_test_server.py --parse FILE.eml   (print the description above as JSON)
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import ssl
import subprocess
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def make_certs(d):
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-subj", "/CN=Assent Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, san in (("server", "DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1"),
                      ("other", "DNS:other.example")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key",
            "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}")
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n")
        run("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem",
            "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2",
            "-out", f"{d}/{name}.pem", "-extfile", f"{d}/{name}.ext")


def local(addr):
    return addr.split("@", 1)[0].lower()


def describe(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers = {}
    for name, value in msg.items():
        headers.setdefault(name.lower(), []).append(str(value))
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append({
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "cte": part.get("Content-Transfer-Encoding"),
            # Text is CRLF on the wire; compare it in its local form.
            "content": part.get_content().replace("\r\n", "\n"),
        })
    lines = raw.split(b"\r\n")
    return {
        "headers": headers,
        "content_type": msg.get_content_type(),
        "parts": parts,
        "max_line": max(len(l) for l in lines),
        "bare_lf": sum(l.count(b"\n") for l in lines),
        "raw": raw.decode("ascii", errors="replace"),
    }


class Handler:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    def save(self, session, envelope):
        self.n += 1
        doc = describe(envelope.original_content)
        doc.update({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth_login": (session.auth_data.login.decode()
                           if isinstance(session.auth_data, LoginPassword) else None),
        })
        path = os.path.join(self.dir, "%06d.json" % self.n)
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.rename(path + ".tmp", path)

    async def handle_MAIL(self, server, session, envelope, address, options):
        if local(address).startswith("blocked"):
            return "550 5.7.1 Sender address rejected: blocked by policy"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options):
        lp = local(address)
        if lp.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if lp.startswith("tempfail"):
            return f"451 4.3.0 <{address}>: Temporary lookup failure"
        if lp.startswith("drop"):
            server.transport.abort()
            return "421 4.4.2 closing"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        lps = [local(a) for a in envelope.rcpt_tos]
        if any(l.startswith("datafail") for l in lps):
            return "554 5.6.0 Message rejected: content refused"
        if any(l.startswith("datatemp") for l in lps):
            return "452 4.3.1 Insufficient system storage"
        self.save(session, envelope)
        if os.path.exists(os.path.join(self.dir, "slow")):
            await asyncio.sleep(60)
        return "250 2.0.0 Ok: queued"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--dir")
    ap.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    ap.add_argument("--make-certs")
    ap.add_argument("--parse", help="print the description of one .eml file as JSON")
    a = ap.parse_args()
    if a.make_certs:
        make_certs(a.make_certs)
        return 0
    if a.parse:
        with open(a.parse, "rb") as f:
            json.dump(describe(f.read()), sys.stdout)
        return 0

    os.makedirs(a.dir, exist_ok=True)
    handler = Handler(a.dir)
    kw = {"hostname": "mx.test", "timeout": 30}
    if a.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.starttls)
        kw.update(tls_context=ctx, require_starttls=True)
    server_ssl = None
    if a.smtps:
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(*a.smtps)
    if a.auth:
        user, password = a.auth

        def authenticator(server, session, envelope, mechanism, data):
            ok = (isinstance(data, LoginPassword) and data.login.decode() == user
                  and data.password.decode() == password)
            return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

        kw.update(authenticator=authenticator, auth_required=True,
                  auth_require_tls=not a.smtps and bool(a.starttls))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    srv = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, loop=loop, **kw), "127.0.0.1", a.port, ssl=server_ssl))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    loop.run_forever()
    srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
