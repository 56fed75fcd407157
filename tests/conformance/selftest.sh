#!/usr/bin/env bash
# Self-test of tests/conformance/run-critest.sh: the known-failures gate is exercised on
# hand-made ginkgo JSON reports (fixtures/), and the critest-running path with a fake
# critest. Needs bash, jq and awk; python3 for the unix-socket cases (skipped without it).
# Prints "N passed, N failed" and exits non-zero if any check failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
run=$here/run-critest.sh
fx=$here/fixtures
tmp=$(mktemp -d)
listener_pid=

cleanup() {
    [[ -n $listener_pid ]] && kill "$listener_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

npass=0 nfail=0 nskip=0 name= out= rc=
ok() { npass=$((npass + 1)); }
bad() {
    nfail=$((nfail + 1))
    printf 'FAIL: %s: %s\n' "$name" "$*"
    printf '%s\n' "$out" | sed 's/^/    | /' | head -40
}

# t NAME WANT_RC ARGS...: run run-critest.sh, check its exit status
t() {
    name=$1
    local want=$2
    shift 2
    out=$("$run" "$@" 2>&1)
    rc=$?
    if [[ $rc == "$want" ]]; then ok; else bad "exit status $rc, want $want"; fi
}
# has LINE: output contains LINE as a whole line
has() { if grep -qxF -- "$1" <<<"$out"; then ok; else bad "missing line: $1"; fi; }
# contains TEXT: output contains TEXT somewhere
contains() { if grep -qF -- "$1" <<<"$out"; then ok; else bad "missing text: $1"; fi; }
lacks() { if grep -qF -- "$1" <<<"$out"; then bad "unexpected text: $1"; else ok; fi; }
# count N TEXT: TEXT occurs on exactly N lines
count() {
    local n
    n=$(grep -cF -- "$2" <<<"$out")
    if [[ $n == "$1" ]]; then ok; else bad "'$2' on $n lines, want $1"; fi
}
same_file() { # same_file WHAT GOT WANT
    if diff -u "$3" "$2" >"$tmp/diff" 2>&1; then ok; else
        out=$(cat "$tmp/diff")
        bad "$1 differs from expectation"
    fi
}

K=$fx/known.txt

# --- gate on existing reports ---------------------------------------------------------
t "all listed specs fail" 0 --report "$fx/expected-failures.json" --known "$K"
has "critest: passed 2, failed 3 (known 3), skipped 2, total 7"
has "known failures by area: containers 1, images 1, pods 1"
has "gate: ok (3 known failure(s) remain)"
lacks "warning:"

t "unlisted failure" 1 --report "$fx/unlisted-failure.json" --known "$K"
has "gate: unexpected failure (failed): [k8s.io] Delta fails unexpectedly"
has "      sigs.k8s.io/cri-tools@v1.36.0/pkg/validate/fake.go:57: Expected <string>: foo to equal <string>: bar"
has "critest: passed 2, failed 4 (known 3), skipped 2, total 8"
has "gate: FAILED, 1 violation(s)"

t "listed spec passes" 1 --report "$fx/listed-passes.json" --known "$K"
has "gate: now passes, remove it from $K (line 4): [k8s.io] Alpha suite fails A"
count 2 "gate: " # only that violation, plus the verdict line
has "gate: FAILED, 1 violation(s)"

t "listed name absent" 1 --report "$fx/listed-absent.json" --known "$K"
has "gate: $K:5: no spec with this name in the report (typo or stale entry): [k8s.io] Alpha suite nested fails B"

t "listed spec skipped" 0 --report "$fx/listed-skipped.json" --known "$K"
has "warning: listed in $K but skipped in this run: [k8s.io] Alpha suite fails A"
has "critest: passed 2, failed 2 (known 2), skipped 3, total 7"

t "suite timeout" 1 --report "$fx/suite-timeout.json" --known "$K"
has "gate: suite did not complete normally: Suite Timeout Elapsed"

t "BeforeSuite failed, all specs skipped" 1 --report "$fx/beforesuite-failed.json" --known "$K"
contains "gate: suite node failed: BeforeSuite failed"
has "critest: passed 0, failed 0 (known 0), skipped 7, total 7"

t "same spec reported twice: failure wins" 1 --report "$fx/duplicate-spec.json" --known "$K"
contains "gate: unexpected failure (failed): [k8s.io] Delta passes"
has "critest: passed 1, failed 4 (known 3), skipped 2, total 7"

t "malformed known-failures entry" 1 --report "$fx/expected-failures.json" --known "$fx/known-malformed.txt"
contains "known-malformed.txt:3: [k8s.io] Alpha suite nested fails B -- malformed entry"
contains "gate: unexpected failure (panicked): [k8s.io] Alpha suite nested fails B"

# --- usage / infrastructure errors ---------------------------------------------------------
t "report missing" 2 --report "$tmp/nope.json" --known "$K"
echo '{"not": "a report"}' >"$tmp/object.json"
t "report is not a ginkgo report" 2 --report "$tmp/object.json" --known "$K"
echo '[]' >"$tmp/empty.json"
t "report without specs" 2 --report "$tmp/empty.json" --known "$K"
echo '[{"SpecReports": [' >"$tmp/truncated.json"
t "truncated report" 2 --report "$tmp/truncated.json" --known "$K"
t "known-failures file missing" 2 --report "$fx/expected-failures.json" --known "$tmp/nope.txt"
t "unknown argument" 2 --report "$fx/expected-failures.json" --known "$K" --bogus

# --- summary.txt -------------------------------------------------------------------------
t "summary written with --out" 0 --report "$fx/expected-failures.json" --known "$K" --out "$tmp/o"
printf '%s\t%s\n' \
    failed '[k8s.io] Alpha suite fails A' \
    failed '[k8s.io] Alpha suite nested fails B' \
    failed '[k8s.io] Beta spec # with hash' \
    passed '[k8s.io] Delta passes' \
    passed '[k8s.io] Runtime info runtime should return version info [Conformance]' \
    skipped '[k8s.io] Gamma is pending' \
    skipped '[k8s.io] Gamma is skipped' >"$tmp/want-summary"
same_file summary.txt "$tmp/o/summary.txt" "$tmp/want-summary"

# --- --write-known ---------------------------------------------------------------------
cp "$K" "$tmp/known.txt"
t "write-known adds new failures as unassigned" 0 --report "$fx/unlisted-failure.json" --known "$tmp/known.txt" --write-known
contains "wrote $tmp/known.txt: 4 entries (was 3), 1 marked \"# unassigned\""
cat >"$tmp/want-known" <<'EOF'
# Known failures for the selftest fixtures.
# Format: <full spec name> # <area>

[k8s.io] Alpha suite nested fails B # containers

[k8s.io] Beta spec # with hash # images

[k8s.io] Alpha suite fails A # pods

[k8s.io] Delta fails unexpectedly # unassigned
EOF
same_file "rewritten known-failures" "$tmp/known.txt" "$tmp/want-known"
t "gate passes with the rewritten file" 0 --report "$fx/unlisted-failure.json" --known "$tmp/known.txt"

t "write-known drops passing specs, keeps skipped ones" 0 --report "$fx/listed-passes.json" --known "$tmp/known.txt" --write-known
sed -e '/Alpha suite fails A/d' -e '/Delta fails unexpectedly/d' "$tmp/want-known" | cat -s >"$tmp/want-known2"
# trailing blank line left by the deletion is not produced by the rewrite
sed -i -e '${/^$/d}' "$tmp/want-known2"
same_file "rewritten known-failures (2)" "$tmp/known.txt" "$tmp/want-known2"

cp "$K" "$tmp/known3.txt"
t "write-known keeps listed skipped specs" 0 --report "$fx/listed-skipped.json" --known "$tmp/known3.txt" --write-known
sed -e '/Delta fails unexpectedly/d' "$tmp/want-known" | sed -e '${/^$/d}' >"$tmp/want-known3"
same_file "rewritten known-failures (3)" "$tmp/known3.txt" "$tmp/want-known3"

cp "$K" "$tmp/known4.txt"
t "write-known refuses an incomplete run" 1 --report "$fx/suite-timeout.json" --known "$tmp/known4.txt" --write-known
same_file "known-failures untouched" "$tmp/known4.txt" "$K"

t "write-known creates a missing file" 0 --report "$fx/expected-failures.json" --known "$tmp/new-known.txt" --write-known
t "created file passes the gate" 0 --report "$fx/expected-failures.json" --known "$tmp/new-known.txt"
has "known failures by area: unassigned 3"
out=$(cat "$tmp/new-known.txt")
count 3 " # unassigned"

# --- the real known-failures.txt against the critest v1.36.0 spec inventory -------------
# fixtures/critest-v1.36.0-dry-run.json is a dry run (-ginkgo.dry-run) report of critest
# v1.36.0: every validation spec "passed", benchmarks and the digest spec skipped.
jq '(.[].SpecReports[] | select(.LeafNodeType == "It" and .State == "passed") | .State) = "failed"' \
    "$fx/critest-v1.36.0-dry-run.json" >"$tmp/all-failed.json"
t "known-failures.txt names exist in critest v1.36.0" 1 --report "$tmp/all-failed.json" --known "$here/known-failures.txt"
lacks "no spec with this name"
lacks "malformed"
lacks "duplicate"
contains "gate: unexpected failure (failed): [k8s.io] Runtime info runtime should support returning runtime info runtime should return version info [Conformance]"
n_known=$(grep -cvE '^[[:space:]]*(#|$)' "$here/known-failures.txt" || true)
# Every listed spec "passes" in the dry run: a violation each, none when the list is empty.
want=$((n_known > 0 ? 1 : 0))
t "dry run: every known failure 'passes'" "$want" --report "$fx/critest-v1.36.0-dry-run.json" --known "$here/known-failures.txt"
count "$n_known" "gate: now passes, remove it from"
has "critest: passed 116, failed 0 (known 0), skipped 6, total 122"

# --- running (a fake) critest --------------------------------------------------------------
fake=$tmp/fake-critest
cat >"$fake" <<'EOF'
#!/usr/bin/env bash
# Fake critest: records its arguments, prints ginkgo-like verbose output, writes the
# report named by $FAKE_REPORT to the -ginkgo.json-report path.
printf '%s\n' "$@" >"$FAKE_ARGS"
json=
while (($#)); do
    case $1 in -ginkgo.json-report) json=$2; shift ;; esac
    shift
done
cat <<'OUT'
critest version: v1.36.0
Running Suite: CRI validation - /tmp
====================================
Random Seed: 42

Will run 2 of 3 specs
------------------------------
[k8s.io] Alpha suite fails A
fake.go:1
  [FAILED] in [It] - fake.go:2
• [FAILED] [0.100 seconds]
[k8s.io] Alpha [It] suite fails A
  some details
------------------------------
S
------------------------------
[k8s.io] Delta passes [Serial]
fake.go:3
• [0.200 seconds]
------------------------------

Ran 2 of 3 Specs in 0.300 seconds
FAIL! -- 1 Passed | 1 Failed | 0 Pending | 1 Skipped
OUT
[[ -n $FAKE_REPORT && -n $json ]] && cp "$FAKE_REPORT" "$json"
exit 1
EOF
chmod +x "$fake"
export FAKE_ARGS=$tmp/fake-args

t "critest binary missing" 2 --critest "$tmp/no-critest" --endpoint "unix://$tmp/x.sock" --known "$K" --out "$tmp/r0"
BERTH_ENDPOINT_WAIT=0 t "endpoint not reachable" 2 --critest "$fake" --endpoint "unix://$tmp/none.sock" --known "$K" --out "$tmp/r1"
contains "CRI endpoint not reachable"

if command -v python3 >/dev/null 2>&1; then
    sock=$tmp/cri.sock
    python3 - "$sock" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
while True:
    c, _ = s.accept()
    c.close()
EOF
    listener_pid=$!
    for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done

    FAKE_REPORT=$fx/expected-failures.json t "run critest, gate ok" 0 \
        --critest "$fake" --endpoint "unix://$sock" --known "$K" --out "$tmp/r2" \
        --extra-critest-args -ginkgo.focus 'Alpha|Delta' -runtime-service-timeout 30s
    has "critest [1/2] failed [k8s.io] Alpha suite fails A"
    has "critest [2/2] pass [k8s.io] Delta passes [Serial]"
    has "critest: passed 2, failed 3 (known 3), skipped 2, total 7"
    lacks "some details" # full output goes to the log only
    args=$(cat "$FAKE_ARGS")
    want_args=(
        -runtime-endpoint "unix://$sock" -image-endpoint "unix://$sock" -ginkgo.v -ginkgo.no-color
        -ginkgo.json-report "$tmp/r2/critest.json" -ginkgo.timeout 40m
        -ginkgo.skip 'Image Manager public image with digest should be pulled and removed'
        -ginkgo.focus 'Alpha|Delta' -runtime-service-timeout 30s
    )
    name="critest arguments"
    if [[ $args == "$(printf '%s\n' "${want_args[@]}")" ]]; then ok; else out=$args; bad "unexpected critest arguments"; fi
    name="critest.log has the full output"
    if grep -qxF '  some details' "$tmp/r2/critest.log"; then ok; else out=; bad "missing output"; fi
    name="summary.txt written"
    if [[ -s $tmp/r2/summary.txt && -s $tmp/r2/critest.json ]]; then ok; else out=; bad "missing files"; fi

    FAKE_REPORT=$fx/unlisted-failure.json t "run critest, gate violated" 1 \
        --critest "$fake" --endpoint "unix://$sock" --known "$K" --out "$tmp/r3"
    contains "gate: unexpected failure (failed): [k8s.io] Delta fails unexpectedly"

    FAKE_REPORT= t "critest writes no report" 2 \
        --critest "$fake" --endpoint "unix://$sock" --known "$K" --out "$tmp/r4"
    contains "critest wrote no JSON report"

    # a report left over from an earlier run must not be evaluated
    mkdir -p "$tmp/r5" && cp "$fx/expected-failures.json" "$tmp/r5/critest.json"
    FAKE_REPORT= t "stale report is removed before the run" 2 \
        --critest "$fake" --endpoint "unix://$sock" --known "$K" --out "$tmp/r5"
else
    nskip=$((nskip + 1))
    echo "skipped: critest run checks (python3 not found)"
fi

printf '%d passed, %d failed\n' "$npass" "$nfail"
((nfail == 0))
