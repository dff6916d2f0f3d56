#!/usr/bin/env bash
# bench/run.sh: what `make bench` runs. It installs nginx (Debian) if missing, runs the
# benchmark programs under bench/ (bench/core always; bench/generator, bench/lambda, bench/workers
# and bench/load when they exist), writes their markdown output to docs/BENCHMARKS.md with the
# date, the machine and the exact commands, and prints it. Everything runs on 127.0.0.1 and ends
# by itself.
#
# Environment: GO (default go); BENCH_CORE_FLAGS, extra flags for bench/core (see
# `go run ./bench/core -h`); default -runs 5 -requests 200000 (requests/s and go mod download
# figures are medians of 5, each requests/s round 200,000 requests: on a small shared machine
# single runs swing by more than the goals' margins);
# BENCH_SETTLE, seconds to wait between programs (default 35; see settle).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
OUT=docs/BENCHMARKS.md

# nginx is bench/core's reference static server. The install must not start a service on a
# public address: where no policy-rc.d forbids starting services, one does for the install.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	echo "bench: installing nginx (Debian package)" >&2
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	policy_added=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
		$sudo chmod +x /usr/sbin/policy-rc.d
		policy_added=1
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx >&2
	if [ -n "$policy_added" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME CMD...: runs one benchmark program, its markdown to $tmp/NAME.md, its progress to
# standard error. A failure is written into the report and remembered, not fatal at once.
failed=()
commands=()
run() {
	local name=$1
	shift
	commands+=("$*")
	echo "bench: $*" >&2
	if ! "$@" >"$tmp/$name.md"; then
		failed+=("$name")
		printf '\n**`%s` failed (its standard error says why): figures missing or incomplete.**\n' "$*" >>"$tmp/$name.md"
	fi
}

# settle waits until what the last program wrote is on disk and the files it deleted are old:
# ext4 passes over inodes freed in the last 30 seconds when it allocates new ones, so a program
# started at once would pay for the other's clean-up in every file it creates (the go command
# creates thousands), and its reference with it.
settle() {
	sync
	sleep "${BENCH_SETTLE:-35}"
}

# shellcheck disable=SC2086 # BENCH_CORE_FLAGS is split on purpose
run core "$GO" run ./bench/core ${BENCH_CORE_FLAGS:--runs 5 -requests 200000}
for name in generator lambda workers load; do
	if [ -d "bench/$name" ]; then
		settle
		run "$name" "$GO" run "./bench/$name"
	else
		echo "bench: skipping bench/$name: the directory does not exist" >&2
		printf '### %s\n\nNot measured: bench/%s does not exist yet.\n' "$name" "$name" >"$tmp/$name.md"
	fi
done

mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (bench/run.sh); do not edit by hand. Goals are those of the issues: 2 (the server), 3 (the generator), 4 (Lambda), 5 (the Worker), 6 (the mixed load)."
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs (${cpu:-unknown}), $mem memory, $(uname -sr)"
	echo "- go: $("$GO" version)"
	echo "- nginx: $( (nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1) | sed 's/^nginx version: //')"
	echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "Commands, from the repository's root:"
	echo
	echo '```sh'
	echo "make bench   # = bash bench/run.sh, which runs:"
	for c in "${commands[@]}"; do echo "$c"; done
	echo '```'
	for name in core generator lambda workers load; do
		echo
		cat "$tmp/$name.md"
	done
} >"$tmp/BENCHMARKS.md"
mv "$tmp/BENCHMARKS.md" "$OUT"
cat "$OUT"

if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: failed: ${failed[*]}" >&2
	exit 1
fi
