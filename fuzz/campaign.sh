#!/usr/bin/env bash
# Run every cargo-fuzz target of the workspace for a fixed time each and
# print one line per target: executions, corpus size, crashes/timeouts.
#
#   fuzz/campaign.sh [seconds-per-target] [crate/target ...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Uses the stable toolchain
# without sanitizers (`-s none`). Seeds: each crate's fuzz/corpus/<target>
# (kept out of git), plus fuzz/seeds/<target> where a crate has them, plus
# the Exim test configurations for the config targets when the tree is at
# ../shared/exim-tests (or $OXIM_EXIM_TESTS).
set -euo pipefail
secs=${1:-600}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
logdir=${OXIM_FUZZ_LOGS:-$root/target/fuzz-campaign}
mkdir -p "$logdir"
exim_tests=${OXIM_EXIM_TESTS:-$root/../shared/exim-tests}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for c in conf smtp spool; do
        for t in $(cd "$root/crates/$c" && cargo fuzz list); do targets+=("$c/$t"); done
    done
fi

printf '%-28s %8s %14s %10s %s\n' target seconds executions exec/s result
for ct in "${targets[@]}"; do
    c=${ct%%/*}; t=${ct#*/}
    dir=$root/crates/$c/fuzz
    mkdir -p "$dir/corpus/$t"
    extra=()
    [ -d "$dir/seeds/$t" ] && extra+=("$dir/seeds/$t")
    if [ "$c" = conf ] && [ "$t" = parse_config ] && [ -d "$exim_tests" ]; then
        mkdir -p "$logdir/exim-confs"
        find "$exim_tests" -path '*/confs/*' -type f -size -64k -exec cp -t "$logdir/exim-confs" {} + 2>/dev/null || true
        extra+=("$logdir/exim-confs")
    fi
    log=$logdir/$c-$t.log
    set +e
    (cd "$root/crates/$c" && cargo fuzz run -s none "$t" "$dir/corpus/$t" "${extra[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    if [ $rc -eq 0 ]; then res=clean; else res="FAILED rc=$rc (see $log)"; fi
    printf '%-28s %8s %14s %10s %s\n' "$ct" "$secs" "$execs" "$rate" "$res"
done
