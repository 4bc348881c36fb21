#!/bin/sh
# Builds the libFuzzer targets of test/fuzz (clang, ASan + UBSan, in build-fuzz/) and runs them.
#
#   scripts/fuzz.sh check [SECONDS] [TARGET...]   `make fuzz-check` (part of `make check`): the
#       regression inputs, then SECONDS (default 60) of fuzzing per target from a scratch copy
#       of the committed seed corpus, which is never changed.
#   scripts/fuzz.sh run [SECONDS] [TARGET...]     `make fuzz`: SECONDS (default 600) per target;
#       new inputs are kept in build-fuzz/fuzz-corpus/TARGET and merged there across runs.
#
# Targets: request policy cert pdf cms audit (doc/security.md, "Fuzzing"). Each prints its
# executions, executions per second, coverage (cov: edges, ft: features) and corpus size. A
# crash, leak, timeout (10 s for one input) or out-of-memory (2 GiB) fails the run; the input
# is copied to test/fuzz/regressions/TARGET/, which every later build runs (the gcc build's
# `meson test` too), so fix the bug and commit the input with the fix.
#
# Environment: FUZZ_BUILD (default build-fuzz), FUZZ_JOBS (unused: one target at a time, niced,
# as the machine is shared), CC (default clang).
set -eu

mode=${1:-check}
[ $# -gt 0 ] && shift
case "$mode" in
check) secs=60 ;;
run) secs=600 ;;
*) echo "usage: $0 check|run [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
case "${1:-}" in
'' | *[!0-9]*) ;;
*) secs=$1; shift ;;
esac
targets=${*:-request policy cert pdf cms audit}

src=$(cd "$(dirname "$0")/.." && pwd)
B=${FUZZ_BUILD:-build-fuzz}
case "$B" in /*) ;; *) B="$src/$B" ;; esac

if ! command -v "${CC:-clang}" >/dev/null 2>&1; then
	echo "fuzz: ${CC:-clang} is not installed (make deps installs clang and libclang-rt-14-dev)" >&2
	exit 1
fi
if [ ! -f "$B/build.ninja" ]; then
	CC=${CC:-clang} meson setup "$B" "$src" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false --buildtype=debugoptimized
fi
ninja -C "$B" $(for t in $targets; do printf 'test/fuzz/fuzz-%s ' "$t"; done)

# UBSan reports become crashes; LeakSanitizer runs after every input that leaked.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

max_len() {
	case "$1" in
	pdf) echo 65536 ;;
	audit) echo 32768 ;;
	cms) echo 16384 ;;
	*) echo 8192 ;;
	esac
}

summary=""
failed=""
for t in $targets; do
	bin="$B/test/fuzz/fuzz-$t"
	seeds="$src/test/fuzz/corpus/$t"
	regs="$src/test/fuzz/regressions/$t"
	work="$B/fuzz-work/$t"
	rm -rf "$work"
	mkdir -p "$work/artifacts" "$work/new"
	if [ "$mode" = run ]; then
		corpus="$B/fuzz-corpus/$t"
		mkdir -p "$corpus"
	else
		corpus="$work/new" # scratch: the committed corpus is only read
	fi

	# 1. The inputs that once crashed: each must run cleanly now.
	files=$(find "$regs" -type f ! -name README.md ! -name '.*' 2>/dev/null | sort)
	if [ -n "$files" ]; then
		# shellcheck disable=SC2086
		if ! "$bin" -timeout=10 -rss_limit_mb=2048 $files >"$work/regressions.log" 2>&1; then
			echo "fuzz: $t: a regression input fails again:" >&2
			tail -n 40 "$work/regressions.log" >&2
			failed="$failed $t"
			summary="$summary
$t: REGRESSION (see $work/regressions.log)"
			continue
		fi
	fi

	# 2. Fuzzing.
	dict="$src/test/fuzz/dict/$t.dict"
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
		-print_final_stats=1 -artifact_prefix="$work/artifacts/" -close_fd_mask=1
	[ -f "$dict" ] && set -- "$@" -dict="$dict"
	echo "fuzz: $t: ${secs}s ($bin)"
	status=0
	nice -n 10 "$bin" "$@" "$corpus" "$seeds" >"$work/fuzz.log" 2>&1 || status=$?

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -n 1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$work/fuzz.log" | tail -n 1 || true)
	cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p')
	line="$t: execs ${execs:-?}, exec/s ${rate:-?}, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"

	crashes=$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' \
		-o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | sort)
	if [ "$status" -ne 0 ] || [ -n "$crashes" ]; then
		mkdir -p "$regs"
		for c in $crashes; do
			cp "$c" "$regs/"
			echo "fuzz: $t: saved $(basename "$c") to test/fuzz/regressions/$t/" >&2
		done
		grep -E 'ERROR: |SUMMARY: |fuzz check failed|runtime error' "$work/fuzz.log" | head -n 5 >&2 || true
		echo "fuzz: $t: FAILED (exit $status): log $work/fuzz.log" >&2
		echo "fuzz: reproduce: $bin <input>; fix the bug, keep the input in" \
			"test/fuzz/regressions/$t/ and commit both" >&2
		failed="$failed $t"
		line="$line: FAILED"
	elif [ -z "$execs" ]; then
		echo "fuzz: $t: no statistics: log $work/fuzz.log" >&2
		tail -n 20 "$work/fuzz.log" >&2
		failed="$failed $t"
		line="$line: FAILED"
	fi
	echo "fuzz: $line"
	summary="$summary
$line"
done

echo "fuzz: summary ($mode, ${secs}s per target):$summary"
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
