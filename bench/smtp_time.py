#!/usr/bin/env python3
"""Time one SMTP transaction: connect -> banner, connect -> final 250.

The client speaks pipelined ESMTP the way a good MTA client does: wait for
the banner, EHLO, then MAIL, RCPT and DATA in one write, then the body.
With --tfo it sets TCP_FASTOPEN_CONNECT, so a cached cookie rides on the
SYN and the server can send its banner one round trip earlier.

    smtp_time.py [--tfo] [--port N] [HOST]     prints one JSON object
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

TCP_FASTOPEN_CONNECT = getattr(socket, "TCP_FASTOPEN_CONNECT", 30)
TCPI_OPT_SYN_DATA = 32
BODY_BYTES = 1200


class SmtpError(Exception):
    """The server answered something a relay benchmark does not expect."""


class Conn:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def reply(self) -> tuple[int, list[str]]:
        """Read one (possibly multi-line) reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise SmtpError(f"connection closed after {lines!r}")
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("latin-1")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return int(text[:3]), lines

    def expect(self, code: int) -> list[str]:
        got, lines = self.reply()
        if got != code:
            raise SmtpError(f"expected {code}, got {lines!r}")
        return lines


def transaction(host: str, port: int, tfo: bool, helo: str = "client.bench.test",
                timeout: float = 30.0) -> dict:
    """One message; times are milliseconds from just before connect()."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tfo:
        s.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1)
    t0 = time.perf_counter()
    try:
        s.connect((host, port))
        if tfo:
            # With TCP_FASTOPEN_CONNECT and a cookie, connect() returns at
            # once and the SYN waits for the first write: send zero bytes.
            # The socket is non-blocking under a timeout, so that send
            # reports EINPROGRESS once the SYN (with the cookie) is out.
            try:
                s.send(b"")
            except BlockingIOError:
                pass
        c = Conn(s)
        c.expect(220)
        t_banner = time.perf_counter()
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        options, client_fail = info[5], info[7] & 0x3
        s.sendall(f"EHLO {helo}\r\n".encode())
        ehlo = c.expect(250)
        t_ehlo = time.perf_counter()
        pipelining = any(line[4:].upper().startswith("PIPELINING") for line in ehlo)
        cmds = [f"MAIL FROM:<timer@{helo}>", "RCPT TO:<sink@bench.test>", "DATA"]
        if pipelining:
            s.sendall("".join(f"{x}\r\n" for x in cmds).encode())
            c.expect(250)
            c.expect(250)
            c.expect(354)
        else:
            for x, code in zip(cmds, (250, 250, 354)):
                s.sendall(f"{x}\r\n".encode())
                c.expect(code)
        t_data = time.perf_counter()
        header = (f"From: timer@{helo}\r\nTo: sink@bench.test\r\n"
                  f"Subject: latency probe\r\n\r\n").encode()
        body = header + (b"x" * 78 + b"\r\n") * ((BODY_BYTES - len(header)) // 80)
        s.sendall(body + b".\r\n")
        c.expect(250)
        t_final = time.perf_counter()
        s.sendall(b"QUIT\r\n")
    finally:
        s.close()
    return {
        "banner_ms": (t_banner - t0) * 1000,
        "final_ms": (t_final - t0) * 1000,
        "ehlo_reply_ms": (t_ehlo - t0) * 1000,
        "data_354_ms": (t_data - t0) * 1000,
        "pipelining": pipelining,
        "tcpi_options": options,
        "tcpi_fastopen_client_fail": client_fail,
        "syn_data_acked": bool(options & TCPI_OPT_SYN_DATA),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("host", nargs="?", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--tfo", action="store_true")
    a = ap.parse_args()
    try:
        print(json.dumps(transaction(a.host, a.port, a.tfo)))
    except (OSError, SmtpError) as e:
        print(f"smtp_time: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
