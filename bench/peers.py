#!/usr/bin/env python3
"""Side-by-side relay benchmark: oxim, Postfix and Exim on one machine.

Driven by bench/peers.sh, which installs the peers and builds oxim first and
then calls this script with the paths it found. Two commands:

  throughput   each MTA relays smtp-source -> MTA -> smtp-sink on loopback;
               prints one table with ratios and writes JSON under results/.
  latency      run inside a network namespace (`unshare -n`): delays lo by
               50 ms each way with oxim-delayer and times one SMTP
               transaction against each MTA with and without a TFO cookie.

Only the standard library is used (Python 3.9+).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import pty
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import smtp_time  # noqa: E402  (bench/smtp_time.py)

HELO_NAME = "bench.test"
RCPT_RE = re.compile(rb"^X-Rcpt-Args: <(\d+)[^>]*>", re.M)
SINK_COUNT_RE = re.compile(rb"mesg=(\d+)")


class BenchError(Exception):
    """A benchmark step failed in a way that makes its figures meaningless."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# CPU and memory accounting: one cgroup per MTA (v2 cpu.stat, or v1 cpuacct).
# --------------------------------------------------------------------------


class Cgroup:
    """A cgroup holding every process of one MTA, including exited children.

    cgroup v2's cpu.stat exists whether or not the cpu controller is enabled,
    so this works on pure v2 and on hybrid hosts (/sys/fs/cgroup/unified).
    v1's cpuacct is the fallback.
    """

    def __init__(self, name: str):
        candidates = [
            (Path("/sys/fs/cgroup"), "v2"),
            (Path("/sys/fs/cgroup/unified"), "v2"),
            (Path("/sys/fs/cgroup/cpuacct"), "v1"),
            (Path("/sys/fs/cgroup/cpu,cpuacct"), "v1"),
        ]
        for root, kind in candidates:
            probe = "cgroup.subtree_control" if kind == "v2" else "cpuacct.usage"
            if not (root / probe).exists():
                continue
            path = root / f"oxim-bench-{name}-{os.getpid()}"
            try:
                path.mkdir(exist_ok=True)
            except OSError:
                continue
            if kind == "v2" and not (path / "cpu.stat").exists():
                path.rmdir()
                continue
            self.path, self.kind = path, kind
            return
        raise BenchError("cannot create a cgroup for CPU accounting (need root and cgroupfs)")

    def enter_fn(self):
        """A preexec_fn that moves the child into this cgroup before exec."""
        procs = str(self.path / "cgroup.procs")

        def enter() -> None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        return enter

    def cpu_seconds(self) -> float:
        """User+system CPU of every process ever in the group."""
        if self.kind == "v2":
            for line in (self.path / "cpu.stat").read_text().splitlines():
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) / 1e6
            raise BenchError(f"no usage_usec in {self.path}/cpu.stat")
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the group (cgroup v2 only; else 0, 0)."""
        if self.kind != "v2":
            return 0.0, 0.0
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat.get("user_usec", 0)) / 1e6, int(stat.get("system_usec", 0)) / 1e6

    def pids(self) -> list[int]:
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def pss_kib(self) -> int:
        """Sum of Pss over the group's live processes."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                    for line in f:
                        if line.startswith(b"Pss:"):
                            total += int(line.split()[1])
                            break
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
        return total

    def kill_all(self) -> None:
        """SIGKILL what is left of the processes this benchmark started."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


# --------------------------------------------------------------------------
# The three MTAs.
# --------------------------------------------------------------------------


def wait_banner(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                data = s.recv(512)
                if data.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
                last = data
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise BenchError(f"no 220 banner on port {port} within {timeout}s (last: {last!r})")


@dataclass
class Mta:
    """Common behaviour; subclasses write the config and start the daemon."""

    name: str
    port: int
    sink_port: int
    work: Path
    proc: subprocess.Popen | None = None
    cg: Cgroup | None = None
    version: str = ""

    def prepare(self) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        (self.work / "log").mkdir(parents=True)
        (self.work / "spool").mkdir(parents=True)
        self.write_config()

    def write_config(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, cg: Cgroup | None) -> None:
        # A daemon left over from an interrupted run would take this run's
        # load into a queue nobody watches.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as e:
                raise BenchError(f"{self.name}: port {self.port} is taken ({e}); "
                                 "is an MTA from an earlier run still running?") from e
        self.prepare()
        self.cg = cg
        out = open(self.work / "daemon.out", "wb")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=cg.enter_fn() if cg else None,
            start_new_session=True,
        )
        try:
            wait_banner(self.port)
        except BenchError as e:
            out_text = (self.work / "daemon.out").read_text(errors="replace")[-2000:]
            self.stop()
            raise BenchError(f"{self.name}: {e}\n{out_text}") from None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.cg:
            self.cg.kill_all()

    def spool_report(self) -> dict | None:
        """What the MTA's spool writer did since it started (oxim only)."""
        return None

    def queue_left(self) -> int:
        """Messages still on the MTA's disk queue."""
        n = 0
        for root, _dirs, files in os.walk(self.work / "spool" / "input"):
            n += sum(1 for f in files if f.endswith("-H"))
        return n


@dataclass
class Oxim(Mta):
    binary: Path = Path()
    # Started as root, oxim binds its port and then runs as this user (its
    # default exim_user), as Exim runs as Debian-exim.
    user: str = "mail"
    # spool_sync setting to run with; empty = oxim's default.
    spool_sync: str = ""

    def prepare(self) -> None:
        super().prepare()
        shutil.chown(self.work / "spool", self.user, self.user)
        shutil.chown(self.work / "log", self.user, self.user)

    def write_config(self) -> None:
        (self.work / "oxim.conf").write_text(f"""\
exim_user = {self.user}
primary_hostname = oxim.{HELO_NAME}
spool_directory = {self.work}/spool
log_file_path = {self.work}/log/%slog
helo_lookup_domains =
acl_smtp_rcpt = accept
smtp_connect_backlog = 1024
smtp_accept_max = 0
{f"spool_sync = {self.spool_sync}" if self.spool_sync else ""}

begin routers

sink:
  driver = accept
  transport = to_sink

begin transports

to_sink:
  driver = smtp
  hosts = 127.0.0.1
  allow_localhost
  port = {self.sink_port}

begin retry

* * F,5d,10s
""")

    def spool_report(self) -> dict | None:
        """SIGUSR1 makes the daemon log its spool writer's counters
        (`spool commits: messages=N batches=N syncfs=N fdatasync=N ...`);
        the last such line, as a dict of ints."""
        mainlog = self.work / "log" / "mainlog"
        try:
            pid = int((self.work / "oxim.pid").read_text().split()[0])
            before = mainlog.read_bytes().count(b"spool commits:") if mainlog.exists() else 0
            os.kill(pid, signal.SIGUSR1)
        except (OSError, ValueError, IndexError):
            return None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            text = mainlog.read_text(errors="replace") if mainlog.exists() else ""
            lines = [line for line in text.splitlines() if "spool commits:" in line]
            if len(lines) > before:
                fields = lines[-1].split("spool commits:", 1)[1].split()
                return {k: int(v) for k, v in (f.split("=", 1) for f in fields if "=" in f)
                        if v.isdigit()}
            time.sleep(0.1)
        return None

    def command(self) -> list[str]:
        return [str(self.binary), "-C", str(self.work / "oxim.conf"), "-bdf",
                "-oX", str(self.port), "-oP", str(self.work / "oxim.pid")]


@dataclass
class Exim(Mta):
    prefix: Path = Path()
    user: str = "Debian-exim"

    @property
    def binary(self) -> Path:
        return self.prefix / "usr/sbin/exim4"

    def prepare(self) -> None:
        super().prepare()
        shutil.chown(self.work / "spool", self.user, self.user)
        shutil.chown(self.work / "log", self.user, self.user)

    def write_config(self) -> None:
        (self.work / "exim.conf").write_text(f"""\
exim_path = {self.binary}
primary_hostname = exim.{HELO_NAME}
spool_directory = {self.work}/spool
log_file_path = {self.work}/log/%slog
local_interfaces = <; 127.0.0.1
keep_environment =
helo_lookup_domains =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
acl_smtp_rcpt = accept
smtp_connect_backlog = 1024
smtp_accept_max = 0
smtp_accept_queue_per_connection = 0

begin routers

sink:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = to_sink

begin transports

to_sink:
  driver = smtp
  port = {self.sink_port}
  allow_localhost
  hosts_avoid_tls = *

begin retry

* * F,5d,10s
""")

    def command(self) -> list[str]:
        return [str(self.binary), "-C", str(self.work / "exim.conf"), "-bdf",
                "-oX", str(self.port), "-oP", str(self.work / "exim.pid")]


POSTFIX_MASTER = """\
{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class Postfix(Mta):
    """A private Postfix instance: its own config dir, queue and log file."""

    def write_config(self) -> None:
        etc = self.work / "etc"
        etc.mkdir()
        (self.work / "data").mkdir()
        shutil.chown(self.work / "data", "postfix", "postfix")
        (etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.work}/spool
data_directory = {self.work}/data
maillog_file = {self.work}/log/maillog
myhostname = postfix.{HELO_NAME}
mydomain = {HELO_NAME}
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{self.sink_port}
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_tls_security_level = none
smtp_tls_security_level = none
alias_maps =
alias_database =
append_dot_mydomain = no
biff = no
smtputf8_enable = no
default_process_limit = 200
""")
        (etc / "master.cf").write_text(POSTFIX_MASTER.format(port=f"127.0.0.1:{self.port}"))

    def command(self) -> list[str]:
        return ["postfix", "-c", str(self.work / "etc"), "start-fg"]

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.work / "etc"), "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.proc:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        super().stop()

    def queue_left(self) -> int:
        n = 0
        for sub in ("incoming", "active", "deferred", "maildrop", "hold"):
            for _root, _dirs, files in os.walk(self.work / "spool" / sub):
                n += len(files)
        return n


def make_mtas(args, names: list[str]) -> list[Mta]:
    work = Path(args.workdir)
    out: list[Mta] = []
    for name in names:
        port = {"oxim": args.base_port + 1, "postfix": args.base_port + 2,
                "exim": args.base_port + 3}[name]
        common = dict(name=name, port=port, sink_port=args.base_port, work=work / name)
        if name == "oxim":
            m: Mta = Oxim(binary=Path(args.oxim), spool_sync=args.oxim_spool_sync, **common)
            # `oxim -bV` creates ./oxim-local/spool (its default spool): run
            # it in the work directory.
            work.mkdir(parents=True, exist_ok=True)
            v = subprocess.run([args.oxim, "-bV"], capture_output=True, text=True, cwd=work)
            m.version = (v.stdout.splitlines() or ["oxim ?"])[0]
        elif name == "postfix":
            m = Postfix(**common)
            m.version = "Postfix " + subprocess.run(
                ["postconf", "-dh", "mail_version"], capture_output=True, text=True
            ).stdout.strip()
        else:
            m = Exim(prefix=Path(args.exim_prefix), **common)
            v = subprocess.run([str(m.binary), "-C", "/dev/null", "-bV"],
                               capture_output=True, text=True).stdout.splitlines()
            m.version = next((line for line in v if line.startswith("Exim version")), "Exim ?")
        out.append(m)
    return out


# --------------------------------------------------------------------------
# Load: smtp-sink with per-message dumps (for lost/duplicate checks).
# --------------------------------------------------------------------------


class Sink:
    """smtp-sink with per-message dumps on tmpfs and a live message counter.

    smtp-sink -c only flushes its counters promptly to a terminal, so it gets
    a pty and a thread keeps the latest "mesg=N".
    """

    def __init__(self, port: int, dump: Path, cg: Cgroup | None):
        if dump.exists():
            shutil.rmtree(dump)
        dump.mkdir(parents=True)
        shutil.chown(dump, "nobody")
        self.dump = dump
        self._count = 0
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-c", "-m", "1024", "-d", f"{dump}/",
             f"127.0.0.1:{port}", "1024"],
            stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
            preexec_fn=cg.enter_fn() if cg else None,
        )
        os.close(slave)
        self._master = master
        self.output = b""
        threading.Thread(target=self._read, daemon=True).start()
        wait_banner(port)

    def _read(self) -> None:
        tail = b""
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                break
            if not data:
                break
            tail = (tail + data)[-256:]
            found = SINK_COUNT_RE.findall(tail)
            if found:
                self._count = int(found[-1])
            if not found and len(self.output) < 4096:
                self.output += data

    def count(self) -> int:
        """Messages completed ("." received) so far."""
        return self._count

    def audit(self, sent: int) -> dict:
        """Lost and duplicated messages, from the recipients' sequence numbers."""
        seen: dict[int, int] = {}
        files = 0
        unparsed = 0
        for entry in os.scandir(self.dump):
            files += 1
            with open(entry.path, "rb") as f:
                m = RCPT_RE.search(f.read(4096))
            if not m:
                unparsed += 1
                continue
            n = int(m.group(1))
            seen[n] = seen.get(n, 0) + 1
        unique = len(seen)
        return {
            "dumped": files,
            "unique": unique,
            "lost": max(0, sent - unique),
            "duplicated": sum(c - 1 for c in seen.values()),
            "unparsed": unparsed,
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        try:
            os.close(self._master)
        except OSError:
            pass
        shutil.rmtree(self.dump, ignore_errors=True)


# --------------------------------------------------------------------------
# One throughput run.
# --------------------------------------------------------------------------


@dataclass
class Profile:
    name: str
    sessions: int
    messages: int
    length: int


def one_run(args, mta: Mta, prof: Profile, rep: int) -> dict:
    cg = Cgroup(mta.name)
    load_cg = Cgroup("load")
    sink = None
    try:
        dump = Path(args.dumpdir) / f"{mta.name}-{prof.name}-{rep}"
        sink = Sink(mta.sink_port, dump, load_cg)
        mta.start(cg)
        time.sleep(1.0)
        idle_pss = cg.pss_kib()
        cpu0 = cg.cpu_seconds()
        user0, sys0 = cg.cpu_split()
        load0 = load_cg.cpu_seconds()
        src_out = open(mta.work / "smtp-source.out", "wb")
        t0 = time.monotonic()
        src = subprocess.Popen(
            ["smtp-source", "-N", "-s", str(prof.sessions), "-m", str(prof.messages),
             "-l", str(prof.length), "-M", HELO_NAME, f"127.0.0.1:{mta.port}"],
            stdout=src_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=load_cg.enter_fn(),
        )
        t_acc = t_dlv = None
        samples: list[tuple[float, int]] = []
        last_count, last_progress = 0, t0
        next_sample = t0
        while True:
            now = time.monotonic()
            if t_acc is None and src.poll() is not None:
                t_acc = now
                if src.returncode != 0:
                    raise BenchError(
                        f"smtp-source failed against {mta.name}: "
                        + (mta.work / "smtp-source.out").read_text(errors="replace")[-500:])
            n = sink.count()
            if n != last_count:
                last_count, last_progress = n, now
            if n >= prof.messages and t_acc is not None:
                t_dlv = now
                break
            if now - last_progress > args.stall:
                raise BenchError(
                    f"{mta.name}: no delivery progress for {args.stall}s "
                    f"({n}/{prof.messages} at the sink, queue {mta.queue_left()})")
            if now >= next_sample:
                samples.append((now - t0, cg.pss_kib()))
                next_sample = now + args.sample_interval
            time.sleep(0.05)
        # Let the MTA finish its bookkeeping (spool removal, logging).
        prev = cg.cpu_seconds()
        quiet_deadline = time.monotonic() + 10
        while time.monotonic() < quiet_deadline:
            time.sleep(0.5)
            cur = cg.cpu_seconds()
            if cur - prev < 0.01 and mta.queue_left() == 0:
                break
            prev = cur
        cpu = cg.cpu_seconds() - cpu0
        user1, sys1 = cg.cpu_split()
        load_cpu = load_cg.cpu_seconds() - load0
        spool = mta.spool_report()
        time.sleep(0.2)
        audit = sink.audit(prof.messages)
        left = mta.queue_left()
        under_load = [p for t, p in samples if t >= min(1.0, (t_dlv - t0) / 4)]
        res = {
            "mta": mta.name,
            "profile": prof.name,
            "rep": rep,
            "messages": prof.messages,
            "accept_s": t_acc - t0,
            "deliver_s": t_dlv - t0,
            "accepted_per_s": prof.messages / (t_acc - t0),
            "delivered_per_s": prof.messages / (t_dlv - t0),
            "cpu_s": cpu,
            "cpu_s_per_1000": cpu * 1000 / prof.messages,
            "user_cpu_s_per_1000": (user1 - user0) * 1000 / prof.messages,
            "sys_cpu_s_per_1000": (sys1 - sys0) * 1000 / prof.messages,
            "load_cpu_s_per_1000": load_cpu * 1000 / prof.messages,
            "idle_pss_mib": idle_pss / 1024,
            "peak_pss_mib": max([p for _, p in samples] + [idle_pss]) / 1024,
            "steady_pss_mib": (statistics.median(under_load) if under_load else idle_pss) / 1024,
            "queue_left": left,
            **audit,
        }
        if spool is not None:
            res["spool"] = spool
        log(f"{mta.name} {prof.name} rep {rep}: accepted {res['accepted_per_s']:.0f}/s, "
            f"delivered {res['delivered_per_s']:.0f}/s, {res['cpu_s_per_1000']:.2f} CPU-s/1000 "
            f"(user {res['user_cpu_s_per_1000']:.2f} / sys {res['sys_cpu_s_per_1000']:.2f}), "
            f"PSS peak {res['peak_pss_mib']:.1f} MiB, lost {res['lost']} dup {res['duplicated']}")
        if spool is not None:
            log(f"{mta.name} {prof.name} rep {rep}: spool writer: {spool_line(spool)}")
        return res
    finally:
        mta.stop()
        if sink:
            sink.stop()
        cg.remove()
        load_cg.remove()


STRACE_SYSCALLS = "fsync,fdatasync,sync_file_range,syncfs,sync,msync"


def fsync_run(args, mta: Mta, prof: Profile) -> dict:
    """Count sync system calls per message in a short run under strace."""
    n = args.fsync_messages
    cg = Cgroup(mta.name)
    sink = None
    strace = None
    try:
        sink = Sink(mta.sink_port, Path(args.dumpdir) / f"{mta.name}-strace", None)
        mta.start(cg)
        out = mta.work / "strace.txt"
        cmd = ["strace", "-f", "-c", "-w", "-o", str(out), "-e", f"trace={STRACE_SYSCALLS}"]
        for pid in cg.pids():
            cmd += ["-p", str(pid)]
        strace = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # strace reports each attach on stderr; wait for all of them.
        time.sleep(1.5)
        src = subprocess.Popen(
            ["smtp-source", "-N", "-s", str(min(prof.sessions, 10)), "-m", str(n),
             "-l", str(prof.length), "-M", HELO_NAME, f"127.0.0.1:{mta.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # ptrace of a fork-per-connection MTA can wedge (seen with Exim at
        # ~700 messages): stop at the first stall and count what was done.
        last, last_t = -1, time.monotonic()
        while sink.count() < n:
            c = sink.count()
            if c != last:
                last, last_t = c, time.monotonic()
            elif time.monotonic() - last_t > args.strace_stall:
                log(f"{mta.name}: strace run stalled at {c}/{n} messages; counting those")
                break
            time.sleep(0.1)
        else:
            time.sleep(1.0)
        delivered = sink.count()
        strace.send_signal(signal.SIGINT)
        strace.wait(timeout=30)
        if src.poll() is None:
            src.kill()
        src.wait()
        if delivered == 0:
            raise BenchError(f"{mta.name}: nothing delivered under strace")
        calls: dict[str, int] = {}
        usecs: dict[str, int] = {}
        for line in out.read_text().splitlines():
            f = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(f) >= 5 and f[-1] in STRACE_SYSCALLS.split(",") and f[3].isdigit():
                calls[f[-1]] = int(f[3])
                usecs[f[-1]] = int(f[2])
        total = sum(calls.values())
        log(f"{mta.name}: {total} sync calls for {delivered} messages ({calls})")
        return {"mta": mta.name, "messages": n, "delivered": delivered,
                "calls": calls, "wall_usecs_per_call": usecs,
                "per_message": total / delivered}
    finally:
        if strace and strace.poll() is None:
            strace.kill()
        mta.stop()
        if sink:
            sink.stop()
        cg.remove()


# --------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------

METRICS = [
    # key, header, format, better
    ("accepted_per_s", "accepted/s", "{:.0f}", "higher"),
    ("delivered_per_s", "delivered/s", "{:.0f}", "higher"),
    ("cpu_s_per_1000", "CPU-s/1k", "{:.2f}", "lower"),
    ("peak_pss_mib", "peak PSS MiB", "{:.1f}", "lower"),
    ("steady_pss_mib", "steady PSS MiB", "{:.1f}", "lower"),
    ("fsync_per_message", "fsync/msg", "{:.2f}", "lower"),
    ("lost", "lost", "{:d}", "zero"),
    ("duplicated", "dup", "{:d}", "zero"),
]


def spool_line(sp: dict) -> str:
    """One line saying how oxim's spool writer made messages durable."""
    msgs, groups = sp.get("messages", 0), sp.get("batches", 0)
    per = msgs / groups if groups else 0.0
    parts = [f"{msgs} messages in {groups} groups ({per:.1f}/group, largest {sp.get('largest', 0)})"]
    for key, name in (("journal", "journal fdatasync"), ("syncfs", "syncfs"),
                      ("fdatasync", "file fdatasync"), ("dirsync", "dir fsync"),
                      ("checkpoints", "checkpoints")):
        if key in sp:
            parts.append(f"{name} {sp[key]}")
    if "sync_ms" in sp:
        parts.append(f"{sp['sync_ms'] / 1000:.2f} s waiting for the disk")
    return ", ".join(parts)


def spool_notes(runs: list[dict]) -> list[str]:
    """Per run: CPU split and what oxim's spool writer did, so a slow run
    says why."""
    out = []
    for r in runs:
        if "spool" not in r:
            continue
        out.append(f"  {r['mta']} {r['profile']} rep {r['rep']}: {r['delivered_per_s']:.0f}/s, "
                   f"CPU {r['cpu_s_per_1000']:.2f} (user {r.get('user_cpu_s_per_1000', 0):.2f} / "
                   f"sys {r.get('sys_cpu_s_per_1000', 0):.2f}); {spool_line(r['spool'])}")
    return (["spool writer per run (oxim's SIGUSR1 counters):"] + out) if out else []


def summarize(runs: list[dict], fsyncs: dict[str, dict]) -> dict:
    """Median per (profile, mta) over repetitions."""
    out: dict = {}
    for r in runs:
        out.setdefault(r["profile"], {}).setdefault(r["mta"], []).append(r)
    summary: dict = {}
    for prof, by_mta in out.items():
        summary[prof] = {}
        for mta, rs in by_mta.items():
            s = {k: statistics.median([r[k] for r in rs]) for k, *_ in METRICS
                 if k in rs[0]}
            s["lost"] = max(r["lost"] for r in rs)
            s["duplicated"] = max(r["duplicated"] for r in rs)
            s["reps"] = len(rs)
            s["messages"] = rs[0]["messages"]
            if mta in fsyncs:
                s["fsync_per_message"] = fsyncs[mta]["per_message"]
            summary[prof][mta] = s
    return summary


def table(summary: dict, versions: dict[str, str]) -> str:
    lines = []
    heads = ["profile", "MTA"] + [h for _, h, _, _ in METRICS]
    rows = []
    for prof, by_mta in summary.items():
        for mta, s in by_mta.items():
            rows.append([prof, mta] + [fmt.format(s[k]) if k in s else "-"
                                       for k, _, fmt, _ in METRICS])
        if "oxim" in by_mta:
            for peer in ("postfix", "exim"):
                if peer not in by_mta:
                    continue
                row = [prof, f"oxim/{peer}"]
                for k, _, _, better in METRICS:
                    a, b = by_mta["oxim"].get(k), by_mta[peer].get(k)
                    if better == "zero" or a is None or b is None:
                        row.append("")
                    elif b == 0:
                        row.append("inf" if a else "1.00")
                    else:
                        row.append(f"{a / b:.2f}")
                rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(heads, *rows)]
    fmt_row = lambda r: "  ".join(str(x).rjust(w) if i > 1 else str(x).ljust(w)  # noqa: E731
                                   for i, (x, w) in enumerate(zip(r, widths)))
    lines.append(fmt_row(heads))
    lines.append(fmt_row(["-" * w for w in widths]))
    lines += [fmt_row(r) for r in rows]
    lines.append("")
    for mta, v in versions.items():
        lines.append(f"{mta}: {v}")
    counts = sorted({(mta, s["messages"], s["reps"]) for by in summary.values()
                     for mta, s in by.items()})
    lines.append("messages per run x repetitions: "
                 + ", ".join(f"{mta} {n} x {r}" for mta, n, r in counts))
    return "\n".join(lines)


def machine_info() -> dict:
    def first(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_total": first(["awk", "/MemTotal/ {print $2 \" kB\"}", "/proc/meminfo"]),
        "fs": first(["df", "-T", "--output=fstype,source", "/var/tmp"]).splitlines()[-1:],
    }


def cmd_throughput(args) -> int:
    if os.geteuid() != 0:
        raise BenchError("run as root (private Postfix/Exim instances and cgroups need it)")
    if args.quick:
        args.messages, args.reps = 2000, 1
        args.exim_messages = 0
        args.fsync_messages = min(args.fsync_messages, 300)
    profiles = [Profile("s10-l2048", 10, args.messages, 2048),
                Profile("s100-l10240", 100, args.messages, 10240)]
    if args.profiles:
        want = set(args.profiles.split(","))
        profiles = [p for p in profiles if p.name in want or p.name.split("-")[0] in want]
    mtas = make_mtas(args, args.mtas.split(","))
    versions = {m.name: m.version for m in mtas}
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    fsyncs: dict[str, dict] = {}
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = os.getloadavg()
    if not args.no_fsync:
        for m in mtas:
            try:
                fsyncs[m.name] = fsync_run(args, m, profiles[0])
            except (BenchError, subprocess.SubprocessError) as e:
                log(f"fsync run for {m.name} failed: {e}")
    failures: list[dict] = []
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    path = results / (f"peers-{'quick' if args.quick else 'full'}-"
                      f"{time.strftime('%Y%m%dT%H%M%S')}.json")
    commit = subprocess.run(["git", "-C", str(BENCH.parent), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()

    def save(text: str = "") -> dict:
        summary = summarize(runs, fsyncs)
        doc = {
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine_info(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "versions": versions,
            "oxim_commit": commit,
            "profiles": [p.__dict__ for p in profiles],
            "reps": args.reps,
            "summary": summary,
            "fsync": fsyncs,
            "runs": runs,
            "failures": failures,
            "complete": bool(text),
            "table": text,
        }
        path.write_text(json.dumps(doc, indent=2))
        return summary

    for prof in profiles:
        for rep in range(1, args.reps + 1):
            # Interleave MTAs so drift (page cache, other load) hits all alike.
            for m in mtas:
                p = prof
                if m.name == "exim" and 0 < args.exim_messages < prof.messages:
                    p = dataclasses.replace(prof, messages=args.exim_messages)
                try:
                    runs.append(one_run(args, m, p, rep))
                except BenchError as e:
                    log(f"FAILED {m.name} {prof.name} rep {rep}: {e}")
                    failures.append({"mta": m.name, "profile": prof.name, "rep": rep,
                                     "error": str(e)})
                save()
    summary = summarize(runs, fsyncs)
    text = table(summary, versions)
    notes = spool_notes(runs)
    if notes:
        text += "\n" + "\n".join(notes)
    text += (f"\nload average at start {load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f} "
             f"({os.cpu_count()} CPUs); oxim {commit}")
    print(text)
    save(text)
    log(f"wrote {path}")
    bad = [f"{p}/{m}" for p, by in summary.items() for m, s in by.items()
           if s["lost"] or s["duplicated"]]
    if bad:
        log(f"LOST OR DUPLICATED MESSAGES: {', '.join(bad)}")
    return 1 if failures or bad else 0


# --------------------------------------------------------------------------
# Latency profile (inside a private network namespace).
# --------------------------------------------------------------------------


def in_private_netns() -> bool:
    """True when this process runs in a network namespace of its own.

    Compares with the namespace the caller recorded before `unshare -n`
    (OXIM_BENCH_HOST_NETNS, set by peers.sh), else with PID 1's; when neither
    is readable, a namespace with no interface but lo counts as private.
    """
    me = os.readlink("/proc/self/ns/net")
    host = os.environ.get("OXIM_BENCH_HOST_NETNS")
    if host:
        return me != host
    try:
        return me != os.readlink("/proc/1/ns/net")
    except OSError:
        pass
    with open("/proc/self/net/dev") as f:
        names = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    return names == ["lo"]


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def cmd_latency(args) -> int:
    if os.geteuid() != 0:
        raise BenchError("the latency profile needs root (netns, iptables)")
    if not in_private_netns():
        raise BenchError("refusing to delay the host's loopback: run under `unshare -n`")
    sh("ip", "link", "set", "lo", "up")
    Path("/proc/sys/net/ipv4/tcp_fastopen").write_text("3\n")
    Path("/proc/sys/net/ipv4/tcp_fastopen_blackhole_timeout_sec").write_text("0\n")
    mtas = make_mtas(args, args.mtas.split(","))
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    sink = Sink(args.base_port, Path(args.dumpdir) / "latency", None)
    pidfile = Path(args.workdir) / "delayer.pid"
    results: dict = {}
    started = []
    try:
        for m in mtas:
            m.work = m.work.with_name(m.name + "-latency")
            m.start(None)
            started.append(m)
        sh(args.delayer, "start", "--dev", "lo", "--delay", f"{args.delay_ms}ms",
           "--pidfile", str(pidfile), "--log", str(Path(args.workdir) / "delayer.log"))
        rtt = float(sh(args.delayer, "rtt", "--count", "5").stdout.strip())
        log(f"RTT on lo: {rtt:.1f} ms")
        for m in mtas:
            res: dict = {}
            for mode in ("plain", "tfo-no-cookie", "tfo-cookie"):
                samples = []
                for _ in range(args.latency_reps):
                    if mode != "tfo-cookie":
                        sh("ip", "tcp_metrics", "flush", check=False)
                    else:
                        # Get a cookie (if the server hands them out).
                        sh("ip", "tcp_metrics", "flush", check=False)
                        smtp_time.transaction("127.0.0.1", m.port, tfo=True)
                    cookie = "fo_cookie" in sh("ip", "tcp_metrics", "show", check=False).stdout
                    r = smtp_time.transaction("127.0.0.1", m.port, tfo=mode != "plain")
                    r["cookie_cached_before"] = cookie
                    samples.append(r)
                banner = statistics.median(s["banner_ms"] for s in samples)
                final = statistics.median(s["final_ms"] for s in samples)
                res[mode] = {
                    "banner_ms": banner,
                    "final_ms": final,
                    "banner_rtts": banner / rtt,
                    "final_rtts": final / rtt,
                    "cookie_used": all(s["cookie_cached_before"] for s in samples),
                    "samples": samples,
                }
                log(f"{m.name} {mode}: banner {banner:.1f} ms ({banner / rtt:.2f} RTT), "
                    f"final 250 {final:.1f} ms ({final / rtt:.2f} RTT)")
            results[m.name] = res
    finally:
        sh(args.delayer, "stop", "--pidfile", str(pidfile), check=False)
        for m in started:
            m.stop()
        sink.stop()
    lines = [f"latency profile: {args.delay_ms} ms each way on lo, RTT {rtt:.1f} ms, "
             f"{smtp_time.BODY_BYTES}-byte message, pipelined ESMTP, median of "
             f"{args.latency_reps}",
             f"{'MTA':8} {'client':14} {'banner ms':>10} {'RTTs':>5} {'final 250 ms':>13} "
             f"{'RTTs':>5} {'cookie':>6}"]
    for name, res in results.items():
        for mode, r in res.items():
            lines.append(f"{name:8} {mode:14} {r['banner_ms']:10.1f} {r['banner_rtts']:5.2f} "
                         f"{r['final_ms']:13.1f} {r['final_rtts']:5.2f} "
                         f"{'yes' if r['cookie_used'] else 'no':>6}")
    text = "\n".join(lines)
    print(text)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    path = out / f"latency-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"rtt_ms": rtt, "delay_ms": args.delay_ms,
                                "results": results, "table": text}, indent=2))
    log(f"wrote {path}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["throughput", "latency"])
    ap.add_argument("--oxim", required=True, help="oxim binary")
    ap.add_argument("--exim-prefix", required=True, help="where exim4 was unpacked")
    ap.add_argument("--delayer", help="oxim-delayer binary (latency)")
    ap.add_argument("--mtas", default="oxim,postfix,exim")
    ap.add_argument("--profiles", default="", help="comma list: s10, s100 (default both)")
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--exim-messages", type=int, default=3000,
                    help="messages per Exim run when fewer than --messages "
                         "(Exim needs 8-15 minutes per 20000); 0 = same as the others")
    ap.add_argument("--quick", action="store_true", help="2000 messages, 1 repetition")
    ap.add_argument("--fsync-messages", type=int, default=500)
    ap.add_argument("--strace-stall", type=float, default=20.0,
                    help="end the strace run after this long without a delivery")
    ap.add_argument("--no-fsync", action="store_true", help="skip the strace run")
    ap.add_argument("--oxim-spool-sync", default="",
                    help="run oxim with this spool_sync (default: oxim's own)")
    ap.add_argument("--workdir", default="/var/tmp/oxim-peers",
                    help="queues and logs (must be on the disk under test, under /var)")
    ap.add_argument("--dumpdir", default="/dev/shm/oxim-peers-sink")
    ap.add_argument("--base-port", type=int, default=25900)
    ap.add_argument("--stall", type=float, default=120.0,
                    help="give up after this many seconds without a delivery")
    ap.add_argument("--sample-interval", type=float, default=0.5)
    ap.add_argument("--delay-ms", type=int, default=50)
    ap.add_argument("--latency-reps", type=int, default=5)
    args = ap.parse_args()
    try:
        if args.command == "throughput":
            return cmd_throughput(args)
        if not args.delayer:
            raise BenchError("latency needs --delayer")
        return cmd_latency(args)
    except BenchError as e:
        log(f"error: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
