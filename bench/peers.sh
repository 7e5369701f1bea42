#!/usr/bin/env bash
# oxim side by side with Postfix and Exim, on this machine, in one run.
# See bench/README.md for what is measured and how to read the table.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/peers.sh [options]

Relays smtp-source -> MTA -> smtp-sink on loopback for oxim, Postfix and
Exim, prints one table with ratios, writes JSON under bench/results/, then
times one transaction per MTA over a 50 ms-each-way loopback in a private
network namespace. Needs root (apt, cgroups, private MTA instances, netns).

  --quick            2000 messages, 1 repetition, 300-message strace run
  --messages N       messages per run (default 20000)
  --reps N           repetitions per profile and MTA; the median is shown (3)
  --exim-messages N  messages per Exim run (default 3000; 0 = as --messages):
                     Exim needs 8-15 minutes for 20000
  --mtas LIST        comma list of oxim,postfix,exim (default all three)
  --profiles LIST    s10 (-s 10 -l 2048) and/or s100 (-s 100 -l 10240)
  --no-fsync         skip the strace run that counts fsyncs per message
  --oxim-spool-sync M  run oxim with spool_sync = M (journal, auto, ...)
                     instead of its default
  --no-latency       skip the 50 ms latency profile
  --latency-only     run only the latency profile
  --no-install       do not apt-get anything; fail if a peer is missing
  --workdir DIR      queues and logs, on the disk under test and under /var
                     (Postfix only logs to files under /var) (/var/tmp/oxim-peers)
  --exim-prefix DIR  where exim4 is unpacked (/var/tmp/oxim-peers-exim)
  --base-port N      sink on N, oxim N+1, Postfix N+2, Exim N+3 (25900)
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
exim_prefix=/var/tmp/oxim-peers-exim
workdir=/var/tmp/oxim-peers
install=1
throughput=1
latency=1
py_args=()

while (($#)); do
	case $1 in
	--quick | --no-fsync) py_args+=("$1") ;;
	--messages | --reps | --exim-messages | --mtas | --profiles | --workdir | --base-port | --oxim-spool-sync)
		(($# >= 2)) || { echo "$1 needs a value" >&2; exit 2; }
		[[ $1 == --workdir ]] && workdir=$2
		py_args+=("$1" "$2")
		shift
		;;
	--exim-prefix)
		(($# >= 2)) || { echo "$1 needs a value" >&2; exit 2; }
		exim_prefix=$2
		shift
		;;
	--no-latency) latency=0 ;;
	--latency-only) throughput=0 ;;
	--no-install) install=0 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

say() { printf '[peers] %s\n' "$*" >&2; }
die() { printf '[peers] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root: the benchmark installs packages, creates cgroups, runs private Postfix and Exim instances and a network namespace"

apt_install() {
	((install)) || die "missing $*; rerun without --no-install or install them"
	say "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# --- Postfix (and smtp-source / smtp-sink) ------------------------------------
system_postfix_running() { postfix status >/dev/null 2>&1; }

if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
	apt_install postfix
	# The package may start the system instance on port 25; the benchmark
	# runs its own private instance, so leave the system one stopped.
	if system_postfix_running; then
		say "stopping the system Postfix the package just started"
		if command -v systemctl >/dev/null && systemctl is-active -q postfix 2>/dev/null; then
			systemctl stop postfix || true
			systemctl disable -q postfix 2>/dev/null || true
		fi
		postfix stop >/dev/null 2>&1 || true
	fi
fi
for tool in postfix postconf smtp-source smtp-sink; do
	command -v "$tool" >/dev/null || die "$tool not found after installing postfix"
done
getent passwd nobody >/dev/null || die "smtp-sink drops privileges to user nobody, which is missing"

# --- Exim, unpacked privately ---------------------------------------------------
no_install=()
((install)) || no_install=(--no-install)
"$here/get-exim.sh" "${no_install[@]}" "$exim_prefix" >/dev/null

# --- Tools ------------------------------------------------------------------------
command -v strace >/dev/null || apt_install strace
if ((latency)); then
	command -v ip >/dev/null || apt_install iproute2
	command -v iptables >/dev/null || apt_install iptables
	command -v unshare >/dev/null || die "unshare (util-linux) not found"
fi
command -v python3 >/dev/null || apt_install python3

# --- oxim ---------------------------------------------------------------------------
say "building oxim (release)"
(cd "$repo" && cargo build --release -q -p oxim -p oxim-delayer)
target=${CARGO_TARGET_DIR:-$repo/target}
[[ -x $target/release/oxim ]] || die "no $target/release/oxim after the build"
# Private copies: a concurrent `cargo build` must not swap binaries mid-run.
mkdir -p "$workdir/bin"
cp "$target/release/oxim" "$target/release/oxim-delayer" "$workdir/bin/"
oxim=$workdir/bin/oxim
delayer=$workdir/bin/oxim-delayer

common=(--oxim "$oxim" --exim-prefix "$exim_prefix" --delayer "$delayer")
rc=0
if ((throughput)); then
	python3 "$here/peers.py" throughput "${common[@]}" "${py_args[@]}" || rc=$?
fi
if ((latency)); then
	# A private network namespace: the delay never touches the host's lo.
	lat_args=()
	for ((i = 0; i < ${#py_args[@]}; i++)); do
		case ${py_args[i]} in
		--mtas | --workdir | --base-port) lat_args+=("${py_args[i]}" "${py_args[i + 1]}") ;;
		esac
	done
	OXIM_BENCH_HOST_NETNS=$(readlink /proc/self/ns/net) \
		unshare -n python3 "$here/peers.py" latency "${common[@]}" "${lat_args[@]}" || rc=$?
fi
exit "$rc"
