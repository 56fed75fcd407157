#!/usr/bin/env bash
# The known-failures gate of a ginkgo suite run (critest, Kubernetes' node e2e): evaluates a
# ginkgo JSON report against a known-failures file. See tests/conformance/README.md.
#
#   gate.sh --report FILE --known FILE [--out DIR] [--write-known] [--label NAME]
#
# --label names the suite in the counts line (default: critest).
# --write-known rewrites the known-failures file from the failures in this run (areas of
# specs already listed are kept, new ones get "# unassigned"). For developers, not CI.
#
# Exit status: 0 gate passed (or known-failures file rewritten), 1 gate violated,
#              2 usage error or missing/unreadable report.
set -uo pipefail

prog=${0##*/}
usage() {
    sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}
die() {
    printf '%s: error: %s\n' "$prog" "$*" >&2
    exit 2
}

known= out= report= write_known=0 label=critest
while (($#)); do
    case $1 in
    --known) known=${2-}; shift 2 || usage ;;
    --out) out=${2-}; shift 2 || usage ;;
    --report) report=${2-}; shift 2 || usage ;;
    --label) label=${2-}; shift 2 || usage ;;
    --write-known) write_known=1; shift ;;
    -h | --help) usage ;;
    *) printf '%s: unknown argument: %s\n' "$prog" "$1" >&2; usage ;;
    esac
done

command -v jq >/dev/null 2>&1 || die "jq is required"
[[ -n $known && -n $report ]] || die "--report FILE and --known FILE are required"
if ((!write_known)) && [[ ! -f $known ]]; then
    die "known-failures file not found: $known"
fi
if [[ -n $out ]]; then
    mkdir -p "$out" || die "cannot create output directory $out"
fi

[[ -f $report ]] || die "report not found: $report"

# ---------------------------------------------------------------------------------------
# Flatten the ginkgo JSON report (an array of suite reports) into tab-separated records:
#   SPEC <state> <full spec name> <failure location> <first error line>
#   NODE <state> <node type [text]> <failure location> <first error line>  (suite-level nodes)
#   REASON <special suite failure reason>
# The spec name is ginkgo's FullText(): ContainerHierarchyTexts + LeafNodeText, empty
# texts dropped, joined by single spaces (ginkgo's verbose console output additionally
# decorates names, e.g. with " [Serial]"; those decorations are not part of the name).
records=$(jq -r '
    def clean: gsub("[\t\r\n]+"; " ");
    def errline:
        ((.Failure.Message // "") | split("\n") | map(gsub("^\\s+|\\s+$"; ""))
            | map(select(. != "" and (test("^<[^>]*>:$") | not)))) as $l
        | (($l | index("{")) // ($l | length)) as $i
        | $l[0:([$i, 4] | min)] | join(" ") | .[0:300];
    def loc:
        if (.Failure.Location.FileName // "") != ""
        then "\(.Failure.Location.FileName):\(.Failure.Location.LineNumber)" else "" end;
    if type != "array" then error("not a ginkgo JSON report (top level is not an array)") else . end
    | .[]
    | (((.SpecialSuiteFailureReasons // [])[]) | ["REASON", clean]),
      ((.SpecReports // [])[]
        | if .LeafNodeType == "It" then
            ["SPEC", .State,
             ([(.ContainerHierarchyTexts // [])[], (.LeafNodeText // "")] | map(select(. != "")) | join(" ") | clean),
             loc, (errline | clean)]
          else
            ["NODE", .State,
             (((.LeafNodeType // "?") + (if (.LeafNodeText // "") != "" then " " + .LeafNodeText else "" end)) | clean),
             loc, (errline | clean)]
          end)
    | join("\t")
' "$report") || die "cannot parse report $report"
grep -q '^SPEC' <<<"$records" || die "report $report contains no specs"

# ---------------------------------------------------------------------------------------
# The gate. Inputs: the known-failures file (may be absent with --write-known) and the
# records. Outputs (in $work): lines.txt (console lines), summary.txt, newknown.txt, and
# rc (0 ok, 1 violated).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$records" >"$work/records.tsv"
[[ -f $known ]] && cp "$known" "$work/known.txt" || : >"$work/known.txt"

awk -F'\t' -v work="$work" -v knownname="$known" -v writing="$write_known" -v label="$label" '
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function class(st) {
    if (st == "passed") return "passed"
    if (st == "skipped" || st == "pending") return "skipped"
    return "failed" # failed, panicked, timedout, interrupted, aborted, invalid
}
function rank(c) { return c == "failed" ? 3 : (c == "passed" ? 2 : 1) }
function out(s) { print s > (work "/lines.txt") }
function violation(s) { nviol++; out("gate: " s); print "gate: " s > (work "/gate.txt") }
function warn(s) { out("warning: " s) }

# ---- file 1: known failures (may be empty, so test FILENAME rather than FNR) ----
FILENAME == ARGV[1] {
    line = $0; sub(/\r$/, "", line)
    if (line ~ /^[ \t]*(#|$)/) {
        if (!seen_entry) header[++nheader] = line
        next
    }
    seen_entry = 1
    # split on the LAST " # "
    pos = 0; from = 1
    while ((i = index(substr(line, from), " # ")) > 0) { pos = from + i - 1; from = pos + 1 }
    if (pos == 0) { malformed[++nmal] = FNR ": " line; next }
    name = trim(substr(line, 1, pos - 1)); area = trim(substr(line, pos + 3))
    if (name == "" || area == "") { malformed[++nmal] = FNR ": " line; next }
    if (name in karea) { dup[++ndup] = FNR ": " name; next }
    karea[name] = area; kline[name] = FNR; korder[++nknown] = name
    next
}

# ---- file 2: report records ----
$1 == "REASON" { reasons[++nreasons] = $2; next }
$1 == "NODE" {
    if (class($2) == "failed") nodefail[++nnodefail] = $3 " " $2 (($4 $5) != "" ? ": " : "") $4 ($4 != "" && $5 != "" ? ": " : "") $5
    next
}
$1 == "SPEC" {
    name = $3; c = class($2)
    if (!(name in state)) { sorder[++nspec] = name; state[name] = c; raw[name] = $2; floc[name] = $4; ferr[name] = $5 }
    else if (rank(c) > rank(state[name])) { state[name] = c; raw[name] = $2; floc[name] = $4; ferr[name] = $5 }
    next
}

END {
    # the report lists specs in (randomised) run order; evaluate them in name order
    for (i = 2; i <= nspec; i++) {
        n = sorder[i]
        for (j = i; j > 1 && sorder[j - 1] > n; j--) sorder[j] = sorder[j - 1]
        sorder[j] = n
    }
    for (i = 1; i <= nspec; i++) {
        n = sorder[i]; c = state[n]; cnt[c]++
        if (c == "failed" && (n in karea)) { knownfail++; byarea[karea[n]]++ }
        print c "\t" n > (work "/summary.unsorted")
    }
    close(work "/summary.unsorted")
    for (i = 1; i <= nreasons; i++) violation("suite did not complete normally: " reasons[i])
    for (i = 1; i <= nnodefail; i++) violation("suite node failed: " nodefail[i])
    for (i = 1; i <= nmal; i++) violation(knownname ":" malformed[i] " -- malformed entry, expected \"<full spec name> # <area>\"")

    # (a) failures not listed
    for (i = 1; i <= nspec; i++) {
        n = sorder[i]
        if (state[n] == "failed" && !(n in karea)) {
            violation("unexpected failure (" raw[n] "): " n)
            if (floc[n] != "" || ferr[n] != "") out("      " floc[n] (floc[n] != "" && ferr[n] != "" ? ": " : "") ferr[n])
        }
    }
    # (b) listed specs that passed, (c) listed names that match no spec
    nskipwarn = 0
    for (i = 1; i <= nknown; i++) {
        n = korder[i]
        if (!(n in state))
            violation(knownname ":" kline[n] ": no spec with this name in the report (typo or stale entry): " n)
        else if (state[n] == "passed")
            violation("now passes, remove it from " knownname " (line " kline[n] "): " n)
        else if (state[n] == "skipped") {
            if (++nskipwarn <= 20) warn("listed in " knownname " but skipped in this run: " n)
        }
    }
    if (nskipwarn > 20) warn("... and " (nskipwarn - 20) " more listed specs were skipped (see summary.txt)")
    for (i = 1; i <= ndup; i++) warn(knownname ":" dup[i] " -- duplicate entry ignored")

    if (knownfail) {
        na = 0
        for (a in byarea) { j = ++na; while (j > 1 && akeys[j - 1] > a) { akeys[j] = akeys[j - 1]; j-- } akeys[j] = a }
        s = ""
        for (j = 1; j <= na; j++) s = s (j > 1 ? ", " : "") akeys[j] " " byarea[akeys[j]]
        out("known failures by area: " s)
    }
    out(sprintf("%s: passed %d, failed %d (known %d), skipped %d, total %d",
        label, cnt["passed"], cnt["failed"], knownfail, cnt["skipped"], nspec))
    if (nviol) out(sprintf("gate: FAILED, %d violation(s)", nviol))
    else out(sprintf("gate: ok (%d known failure(s) remain)", knownfail))

    # regenerated known-failures list: current failures, plus listed specs that were skipped
    for (i = 1; i <= nspec; i++) {
        n = sorder[i]
        if (state[n] == "failed") print ((n in karea) ? karea[n] : "unassigned") "\t" n > (work "/newknown.unsorted")
        else if (state[n] == "skipped" && (n in karea)) print karea[n] "\t" n > (work "/newknown.unsorted")
    }
    for (i = 1; i <= nheader; i++) print header[i] > (work "/header.txt")
    print (nviol ? 1 : 0) > (work "/rc")
    print nreasons + nnodefail > (work "/incomplete")
}
' "$work/known.txt" "$work/records.tsv" || die "gate evaluation failed"

cat "$work/lines.txt"
gate_rc=$(cat "$work/rc")

if [[ -n $out ]]; then
    LC_ALL=C sort "$work/summary.unsorted" >"$out/summary.txt"
    if [[ -f $work/gate.txt ]]; then cp "$work/gate.txt" "$out/gate.txt"; else : >"$out/gate.txt"; fi
    printf 'per-spec states: %s\n' "$out/summary.txt"
fi

# ---------------------------------------------------------------------------------------
if ((write_known)); then
    if [[ $(cat "$work/incomplete") != 0 ]]; then
        printf '%s: not rewriting %s: the run did not complete normally\n' "$prog" "$known" >&2
        exit 1
    fi
    new=$work/newknown.txt
    {
        if [[ -s $work/header.txt ]]; then
            # header = comment block before the first entry, trailing blank lines dropped
            awk '{ l[NR] = $0 } END { n = NR; while (n > 0 && l[n] ~ /^[ \t]*$/) n--; for (i = 1; i <= n; i++) print l[i] }' "$work/header.txt"
        else
            printf '%s\n' \
                "# $label specs expected to fail against berthd (see tests/conformance/README.md)." \
                '# Format: <full spec name> # <area>. This list must only shrink.'
        fi
        if [[ -s $work/newknown.unsorted ]]; then
            # entries grouped by area (blank line between areas), names sorted within an area
            LC_ALL=C sort -t $'\t' -k1,1 -k2 "$work/newknown.unsorted" | awk -F'\t' '
                $1 != prev { print ""; prev = $1 }
                { print $2 " # " $1 }'
        fi
    } >"$new"
    old_n=$(grep -cvE '^[[:space:]]*(#|$)' "$known" 2>/dev/null) || old_n=0
    new_n=$(grep -cvE '^[[:space:]]*(#|$)' "$new") || new_n=0
    unassigned=$(grep -c ' # unassigned$' "$new") || unassigned=0
    tmpk=$(mktemp "$(dirname "$known")/.known.XXXXXX") || die "cannot write next to $known"
    cat "$new" >"$tmpk" && mv -f "$tmpk" "$known" || die "cannot write $known"
    printf 'wrote %s: %d entries (was %d), %d marked "# unassigned"\n' "$known" "$new_n" "$old_n" "$unassigned"
    exit 0
fi

exit "$gate_rc"
