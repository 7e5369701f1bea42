#!/usr/bin/env bash
# Where does oxim's time go in the relay benchmark? Runs the s10 profile
# (smtp-source -s 10 -l 2048) against oxim alone, three times:
#   1. plain, for the throughput baseline;
#   2. under `perf record -e cpu-clock -g` (on-CPU profile, by symbol);
#   3. under `strace -f -c -w` (wall time per system call: where threads wait).
# Run bench/peers.sh --quick once first (it builds oxim into the work dir).
#
#   bench/profile-oxim.sh [MESSAGES] [OXIM]     (default 3000 messages)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
n=${1:-3000}
oxim=${2:-/var/tmp/oxim-peers/bin/oxim}
work=/var/tmp/oxim-peers-profile
port=26901
sink_port=26900
out=$here/results/profile-$(date +%Y%m%dT%H%M%S)
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
[[ -x $oxim ]] || { echo "no $oxim: run bench/peers.sh --quick first" >&2; exit 1; }
mkdir -p "$out"

sink_pid=
oxim_pid=
cleanup() {
	if [[ -n $oxim_pid ]]; then
		kill "$oxim_pid" 2>/dev/null || true
		wait "$oxim_pid" 2>/dev/null || true
		oxim_pid=
	fi
	if [[ -n $sink_pid ]]; then
		kill "$sink_pid" 2>/dev/null || true
		wait "$sink_pid" 2>/dev/null || true
		sink_pid=
	fi
}
trap cleanup EXIT

start() {
	rm -rf "$work"
	mkdir -p "$work/spool" "$work/log"
	cat >"$work/oxim.conf" <<EOF
primary_hostname = oxim.bench.test
spool_directory = $work/spool
log_file_path = $work/log/%slog
helo_lookup_domains =
acl_smtp_rcpt = accept
smtp_accept_max = 0
begin routers
sink:
  driver = accept
  transport = to_sink
begin transports
to_sink:
  driver = smtp
  hosts = 127.0.0.1
  allow_localhost
  port = $sink_port
begin retry
* * F,5d,10s
EOF
	smtp-sink -u nobody -c 127.0.0.1:$sink_port 1024 >/dev/null 2>&1 &
	sink_pid=$!
	"$oxim" -C "$work/oxim.conf" -bdf -oX $port -oP "$work/pid" &
	oxim_pid=$!
	for _ in $(seq 100); do
		python3 - "$port" <<'EOF' 2>/dev/null && return 0
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
    assert s.recv(100).startswith(b"220")
EOF
		sleep 0.1
	done
	echo "oxim did not come up" >&2
	exit 1
}

load() {
	local t0 t1
	t0=$(date +%s.%N)
	smtp-source -N -s 10 -m "$n" -l 2048 -M bench.test 127.0.0.1:$port
	t1=$(date +%s.%N)
	python3 -c "print(f'{$n / ($t1 - $t0):.0f} msgs/s accepted')"
	# Deliveries finish shortly after; wait for the queue to drain.
	for _ in $(seq 200); do
		[[ -z $(find "$work/spool/input" -name '*-H' -print -quit 2>/dev/null) ]] && break
		sleep 0.1
	done
}

echo "== baseline"
start
load | tee "$out/baseline.txt"
cleanup

echo "== perf (on-CPU)"
start
perf record -q -e cpu-clock -F 999 -g -p "$oxim_pid" -o "$out/perf.data" 2>/dev/null &
perf_pid=$!
sleep 0.5
load | tee "$out/perf-load.txt"
kill -INT "$perf_pid"
wait "$perf_pid" || true
cleanup
report() { perf report -i "$out/perf.data" --no-children --stdio -g none "$@" 2>/dev/null | grep '%' | grep -v '^#' || true; }
report --sort comm | tee "$out/perf-threads.txt"
report --sort dso | head -6 | tee "$out/perf-dso.txt"
report --sort dso,sym | head -40 | tee "$out/perf-top.txt"

echo "== strace (wall time per system call, all threads)"
start
strace -f -c -w -o "$out/strace.txt" -p "$oxim_pid" 2>/dev/null &
strace_pid=$!
sleep 1
load | tee "$out/strace-load.txt"
kill -INT "$strace_pid"
wait "$strace_pid" || true
cleanup
head -25 "$out/strace.txt"
echo "results in $out"
