#!/usr/bin/env bash
# oxim -> oxim latency with early pipelining (PIPECONNECT) and TCP Fast Open:
# in a private network namespace with DELAY added each way on lo (by
# oxim-delayer), an oxim daemon and an oxim client (`oxim -odi`, smtp
# transport, CHUNKING) deliver a ~1 KB message N times per case; prints the
# wall time of each client run in microseconds, then per case the mean and
# the minimum. The client's own work (start, spool, routing) is included:
# run once with DELAY 0 to see it, and subtract it before dividing by the
# round trip (2 x DELAY). At the end, the server daemon's metrics endpoint
# (metrics_listen) is read with curl when it is installed.
#
# Cases (each run N times, in this order):
#   no-cookie,no-cache        first contact: no TFO cookie, no cached EHLO
#   cookie,no-cache           a cookie, but no cached EHLO answer
#   cookie,cached-EHLO        both: the whole message rides in the SYN
#                             (the server offers XOXIM-TXID)
#   cookie,cached-EHLO,no-TXID  both, with XOXIM-TXID removed from the
#                             cached answer: early pipelining right after
#                             the handshake, as with a server that does not
#                             offer it
#   no-TFO,cached-EHLO / no-TFO,no-PIPECONNECT
# With Exim 4.96 at $EXIM (default /var/tmp/oxim-peers-exim/usr/sbin/exim4,
# from bench/get-exim.sh), also oxim -> Exim and Exim -> oxim (Exim's
# hosts_try_fastopen and hosts_pipe_connect = *; Exim offers PIPECONNECT
# and CHUNKING, no STARTTLS here): first contact, then cookie + cached EHLO.
#
# usage (root): bench/pipeconnect-latency.sh [DELAY] [N]   (default 50ms 5)
# needs target/debug (or $OXIM_BIN_DIR) with oxim and oxim-delayer.
set -euo pipefail
if [ "${1:-}" != "--inside" ]; then
    exec unshare -n "$0" --inside "${1:-50ms}" "${2:-5}"
fi
delay=$2 n=$3
exim_bin=${EXIM:-/var/tmp/oxim-peers-exim/usr/sbin/exim4}
bin=${OXIM_BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/debug}
dir=$(mktemp -d /tmp/oxim-pipeconnect.XXXXXX)
chmod 755 "$dir" # Exim reads its spool and configuration as Debian-exim
cat >"$dir/conf" <<CONF
SERVER =
TFO = *
PC = *
PORT = 2525
primary_hostname = myhost.test.ex
spool_directory = $dir/spool
exim_user = root
.ifdef SERVER
log_file_path = $dir/log/SERVER%slog
metrics_listen = 127.0.0.1:9125
.else
log_file_path = $dir/log/%slog
.endif
helo_lookup_domains =
acl_smtp_rcpt = accept
log_selector = +received_recipients +pipelining +tfo_detail
# Plain TCP, as for the Exim peer below: this measures TFO and early
# pipelining. (Since oxim offers STARTTLS with a self-signed certificate by
# default, as Exim does, a default oxim pair also pays STARTTLS, the TLS
# handshake and a second EHLO.)
tls_advertise_hosts =
begin routers
server:
  driver = redirect
  condition = \${if eq {SERVER}{server}{yes}{no}}
  data = :blackhole:
client:
  driver = accept
  condition = \${if eq {SERVER}{server}{no}{yes}}
  transport = to_server
begin transports
to_server:
  driver = smtp
  allow_localhost
  hosts = 127.0.0.1
  port = PORT
  hosts_try_fastopen = TFO
  hosts_pipe_connect = PC
begin retry
* * F,5d,10s
CONF
ip link set lo up
sysctl -qw net.ipv4.tcp_fastopen=3
if [ "$delay" != 0 ]; then
    "$bin/oxim-delayer" start --dev lo --delay "$delay" --pidfile "$dir/delayer.pid" >/dev/null
fi
# -bdf: stays in the foreground, so that $! is the daemon to stop.
"$bin/oxim" -C "$dir/conf" -DSERVER=server -bdf -oX 2525 &
daemon=$!
exim_d=
if [ -x "$exim_bin" ]; then
    # Exim: a server on 2526 that discards mail for exim.sink, and a client
    # that relays everything else to oxim on 2525. Its configuration must be
    # root's; its spool its own user's.
    edir=$dir/exim
    mkdir -p "$edir/spool" "$edir/log"
    chown -R Debian-exim:Debian-exim "$edir"
    cat >"$dir/exim.conf" <<ECONF
exim_path = $exim_bin
exim_user = Debian-exim
keep_environment =
primary_hostname = exim.test.ex
qualify_domain = test.ex
spool_directory = $edir/spool
log_file_path = $edir/log/%slog
helo_lookup_domains =
host_lookup =
tls_advertise_hosts =
acl_smtp_rcpt = accept
log_selector = +pipelining +received_recipients
begin routers
discard:
  driver = redirect
  domains = exim.sink
  data = :blackhole:
to_oxim:
  driver = accept
  transport = to_oxim
begin transports
to_oxim:
  driver = smtp
  allow_localhost
  hosts = 127.0.0.1
  port = 2525
  hosts_try_fastopen = *
  hosts_pipe_connect = *
begin retry
* * F,5d,10s
ECONF
    "$exim_bin" -C "$dir/exim.conf" -bdf -oX 2526 -oP "$edir/exim.pid" &
    exim_d=$!
fi
sleep 1
body=$(head -c 900 /dev/zero | tr '\0' 'x')
one() { # case, extra oxim arguments
    local t0 t1
    t0=$(date +%s%N)
    printf 'Subject: t\n\n%s\n' "$body" | "$bin/oxim" -C "$dir/conf" "${@:2}" -odi a@test.ex
    t1=$(date +%s%N)
    echo "$1 $(( (t1 - t0) / 1000 ))"
}
to_exim() { # case: oxim -> Exim
    local t0 t1
    t0=$(date +%s%N)
    printf 'Subject: t\n\n%s\n' "$body" | "$bin/oxim" -C "$dir/conf" -DPORT=2526 -odi a@exim.sink
    t1=$(date +%s%N)
    echo "$1 $(( (t1 - t0) / 1000 ))"
}
from_exim() { # case: Exim -> oxim
    local t0 t1
    t0=$(date +%s%N)
    printf 'Subject: t\n\n%s\n' "$body" | "$exim_bin" -C "$dir/exim.conf" -odi a@test.ex
    t1=$(date +%s%N)
    echo "$1 $(( (t1 - t0) / 1000 ))"
}
for _ in $(seq 1 "$n"); do
    ip tcp_metrics delete 127.0.0.1 2>/dev/null || true
    rm -f "$dir/spool/db/misc"
    one no-cookie,no-cache
    rm -f "$dir/spool/db/misc"
    one cookie,no-cache
    one cookie,cached-EHLO
    # The cached answer without XOXIM-TXID: no message in the SYN.
    sed -i 's/\tXOXIM-TXID//' "$dir/spool/db/misc"
    one cookie,cached-EHLO,no-TXID
    one no-TFO,cached-EHLO -DTFO=:
    one no-TFO,no-PIPECONNECT -DTFO=: -DPC=:
    if [ -n "$exim_d" ]; then
        ip tcp_metrics delete 127.0.0.1 2>/dev/null || true
        rm -f "$dir/spool/db/misc" "$edir"/spool/db/misc*
        to_exim oxim-to-Exim,first-contact
        to_exim oxim-to-Exim,cookie,cached-EHLO
        ip tcp_metrics delete 127.0.0.1 2>/dev/null || true
        from_exim Exim-to-oxim,first-contact
        from_exim Exim-to-oxim,cookie,cached-EHLO
    fi
done | tee "$dir/times" | awk '{print} {s[$1]+=$2; c[$1]++; if (!($1 in m) || $2 < m[$1]) m[$1]=$2}
    END {for (k in s) printf "%-24s n=%d mean=%.1fms min=%.1fms\n", k, c[k], s[k]/c[k]/1000, m[k]/1000}'
# The server daemon's counters (metrics_listen), when curl is there.
if command -v curl >/dev/null; then
    curl -s http://127.0.0.1:9125/metrics |
        grep -E '^oxim_(tfo_server_connections|pipe_connect_server_messages|messages_received|deliveries|spool_commit_batches)_total' || true
fi
kill "$daemon" 2>/dev/null || true
[ -z "$exim_d" ] || kill "$exim_d" 2>/dev/null || true
[ "$delay" = 0 ] || "$bin/oxim-delayer" stop --pidfile "$dir/delayer.pid" >/dev/null 2>&1 || true
echo "logs: $dir/log"
