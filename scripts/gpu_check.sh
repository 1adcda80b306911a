#!/usr/bin/env bash
# One command to check gankernels on a fresh GPU machine: build, CUDA/Triton tests,
# compute-sanitizer, benchmarks and a one-page summary. See usage() below.
#
# Every piece writes its logs to OUTDIR and its status (exit code, seconds, finish time) to
# OUTDIR/status/<piece>, so any piece can be re-run alone and the summary written after any
# subset. Each command runs under `timeout`, and all of them together within GPU_CHECK_DEADLINE
# seconds of the start (default 570: the whole run stays under 10 minutes).
set -uo pipefail

PIECES=(build test sanitize bench summary)
SANITIZER_TOOLS=(memcheck racecheck synccheck)
# The tests that run a GPU kernel: every id with a cuda or triton backend parameter, every test of
# tests/test_cuda_build.py and tests/test_triton_backend.py (-k matches module names too), and
# the two mixed-device tests, which need a GPU but carry neither word.
# tests/test_gpu_check_script.py checks that nothing else is skipped for want of a GPU.
TEST_SELECTION="cuda or triton or mixed_devices_op"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
DEADLINE=${GPU_CHECK_DEADLINE:-570}
CAP_BUILD=${GPU_CHECK_TIMEOUT_BUILD:-300}
CAP_TEST=${GPU_CHECK_TIMEOUT_TEST:-240}
CAP_SANITIZE=${GPU_CHECK_TIMEOUT_SANITIZE:-150}
CAP_BENCH=${GPU_CHECK_TIMEOUT_BENCH:-240}
CAP_SMALL=60                # gankernels info, bench.summarize, bench.plot, summary queries
SUMMARY_RESERVE=15          # seconds kept back from the deadline for the summary
BENCH_BUDGET=${GPU_CHECK_BENCH_BUDGET:-0.2}
# Extra compute-sanitizer options, e.g. "--report-api-errors no" should torch's own CUDA API
# calls be reported (the summary counts those "Program hit ..." reports apart).
read -r -a SANITIZER_EXTRA <<<"${GPU_CHECK_SANITIZER_ARGS:-}"
ARCH_PLACEHOLDER="<detected at run time>"
START=$SECONDS

usage() {
  cat <<EOF
usage: scripts/gpu_check.sh [--dry-run] OUTDIR [PIECE ...]
       scripts/gpu_check.sh --help

Checks gankernels on a GPU machine (torch with CUDA, Triton, nvcc and compute-sanitizer
installed; no network needed). PIECE is one or more of (default: all, run in this order):

  build     pip install --no-build-isolation . (not editable) for the visible GPU's
            architecture only (TORCH_CUDA_ARCH_LIST), MAX_JOBS=\$(nproc), GANKERNELS_CUDA=1;
            then python -P -m gankernels info              -> build.log, info.txt
  test      the CUDA and Triton tests and tests/test_cuda_build.py on the installed package
            (python -P -m pytest tests -k "$TEST_SELECTION")
                                                           -> test.log, tests.xml
  sanitize  compute-sanitizer memcheck, racecheck, synccheck, each over one run of
            scripts/sanitize_subset.py --device cuda      -> sanitize-<tool>.log
  bench     python -P -m pytest bench/ --benchmark-json, then bench.summarize and bench.plot
                                                           -> bench.log, bench.json, bench.md,
                                                              bench.png
  summary   one page: GPU, versions, each piece's status and time, test counts, sanitizer
            error summaries, the benchmark table          -> summary.md

Each piece records OUTDIR/status/<piece> ("exit-code seconds finished-at"); summary.md is
rewritten at the end of every run from whatever statuses OUTDIR holds. Exits 0 when every
requested piece passed, 1 when one failed (the later pieces still run), 2 on bad usage.

  --dry-run   print each command with the environment it would set; run nothing
  --help      this text

Environment: PYTHON (default python); GPU_CHECK_DEADLINE (seconds for the whole run, default
570); GPU_CHECK_TIMEOUT_BUILD, _TEST, _SANITIZE (per tool), _BENCH (caps per command:
300, 240, 150, 240); GPU_CHECK_BENCH_BUDGET (bench --bench-budget, default 0.2 s);
GPU_CHECK_SANITIZER_ARGS (more compute-sanitizer options, e.g. "--report-api-errors no").
TRITON_INTERPRET and GANKERNELS_IMPL are unset for every piece.
EOF
}

usage_error() {
  echo "gpu_check.sh: $1" >&2
  usage >&2
  exit 2
}

is_piece() {
  local piece
  for piece in "${PIECES[@]}"; do
    [ "$1" = "$piece" ] && return 0
  done
  return 1
}

# ---- arguments --------------------------------------------------------------------------------

DRY_RUN=0
OUTDIR=""
REQUESTED=()
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1 ;;
    -*) usage_error "unknown option: $arg" ;;
    *)
      if [ -z "$OUTDIR" ]; then
        is_piece "$arg" && usage_error "no OUTDIR given ('$arg' is a piece; OUTDIR comes first)"
        OUTDIR=$arg
      elif is_piece "$arg"; then
        REQUESTED+=("$arg")
      else
        usage_error "unknown piece: '$arg' (pieces: ${PIECES[*]})"
      fi
      ;;
  esac
done
[ -n "$OUTDIR" ] || usage_error "no OUTDIR given"

# The pieces to run, in the canonical order, each once.
SELECTED=()
for piece in "${PIECES[@]}"; do
  if [ "${#REQUESTED[@]}" -eq 0 ]; then
    SELECTED+=("$piece")
  else
    for wanted in "${REQUESTED[@]}"; do
      if [ "$wanted" = "$piece" ]; then SELECTED+=("$piece"); break; fi
    done
  fi
done

if [ "$DRY_RUN" = 1 ]; then
  case "$OUTDIR" in /*) OUT=$OUTDIR ;; *) OUT=$PWD/$OUTDIR ;; esac
else
  mkdir -p "$OUTDIR/status" || usage_error "cannot create $OUTDIR"
  OUT=$(cd "$OUTDIR" && pwd)
  unset TRITON_INTERPRET GANKERNELS_IMPL
fi

# ---- helpers ----------------------------------------------------------------------------------

# Shell-quotes one word only where needed, so the printed commands stay readable.
quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

quote_all() {
  local word sep=""
  for word in "$@"; do
    printf '%s' "$sep"
    quote "$word"
    sep=" "
  done
}

# The seconds a command may take: its cap, cut to what is left before the deadline.
budget() {
  local cap=$1 left=$((DEADLINE - (SECONDS - START) - SUMMARY_RESERVE))
  [ "$left" -lt "$cap" ] && cap=$left
  [ "$cap" -lt 0 ] && cap=0
  echo "$cap"
}

# Starts a piece's log afresh (not in a dry run).
fresh_log() {
  [ "$DRY_RUN" = 1 ] || : >"$1"
}

# run_cmd LOG SECONDS DIR COMMAND...: prints the command, then (unless a dry run) runs it in DIR
# under `timeout` (SIGINT first, so pytest still writes its junit XML and benchmark JSON), with
# stdout and stderr appended to LOG. Returns the command's exit code; 124 when it timed out or
# no time was left to start it.
run_cmd() {
  local log=$1 limit=$2 dir=$3
  shift 3
  local shown
  shown="(cd $(quote "$dir") && timeout -s INT -k 30 $limit $(quote_all "$@")) >>$(quote "$log") 2>&1"
  echo "+ $shown"
  [ "$DRY_RUN" = 1 ] && return 0
  echo "+ $shown" >>"$log"
  if [ "$limit" -lt 10 ]; then
    echo "gpu_check.sh: not started: the ${DEADLINE} s deadline is spent" | tee -a "$log"
    return 124
  fi
  (cd "$dir" && timeout -s INT -k 30 "$limit" "$@") >>"$log" 2>&1
  local rc=$?
  [ "$rc" -eq 0 ] || echo "  -> exit $rc$([ "$rc" -eq 124 ] && echo " (timed out after ${limit} s)")"
  return "$rc"
}

# first_failure RC1 RC2: prints RC1 unless it is 0, else RC2 (a piece keeps its first failure).
first_failure() {
  if [ "$1" -eq 0 ]; then echo "$2"; else echo "$1"; fi
}

write_status() {  # write_status NAME EXIT_CODE SECONDS
  printf '%s %s %s\n' "$2" "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$OUT/status/$1"
}

# The compute capability of the visible GPU(s), e.g. "9.0" (several distinct ones: "8.0;9.0").
gpu_arch() {
  local arch
  arch=$("$PYTHON" -c '
import sys, torch
if not torch.cuda.is_available():
    sys.exit(1)
caps = {"%d.%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
print(";".join(sorted(caps)))' 2>/dev/null)
  if [ -z "$arch" ] && command -v nvidia-smi >/dev/null 2>&1; then
    arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -u | paste -sd';')
  fi
  [ -n "$arch" ] && echo "$arch"
}

find_sanitizer() {
  local candidate
  for candidate in "$(command -v compute-sanitizer 2>/dev/null)" \
      "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" \
      "${CUDA_HOME:-/usr/local/cuda}/compute-sanitizer/compute-sanitizer" \
      /usr/local/cuda/bin/compute-sanitizer; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# ---- the pieces -------------------------------------------------------------------------------

piece_build() {
  local log="$OUT/build.log" arch rc
  fresh_log "$log"
  fresh_log "$OUT/info.txt"
  if [ "$DRY_RUN" = 1 ]; then
    arch=$ARCH_PLACEHOLDER
    command -v nvidia-smi >/dev/null 2>&1 && arch=$(gpu_arch || echo "$ARCH_PLACEHOLDER")
  elif ! arch=$(gpu_arch); then
    echo "gpu_check.sh: no visible GPU (torch.cuda and nvidia-smi found none)" | tee -a "$log"
    return 1
  fi
  [ "$DRY_RUN" = 1 ] || command -v ninja >/dev/null 2>&1 ||
    echo "gpu_check.sh: warning: ninja not found, the build will be serial" | tee -a "$log"
  # --no-index: with no network, pip fails at once on a missing dependency instead of retrying.
  run_cmd "$log" "$(budget "$CAP_BUILD")" "$ROOT" \
    env MAX_JOBS="$(nproc)" TORCH_CUDA_ARCH_LIST="$arch" GANKERNELS_CUDA=1 \
    "$PYTHON" -m pip install --no-build-isolation . --no-index -v
  rc=$?
  # From OUTDIR with -P: the installed package is imported, never the source tree.
  run_cmd "$OUT/info.txt" "$(budget "$CAP_SMALL")" "$OUT" "$PYTHON" -P -m gankernels info
  rc=$(first_failure "$rc" "$?")
  run_cmd "$OUT/info.txt" "$(budget "$CAP_SMALL")" "$OUT" "$PYTHON" -P -c \
    'import sys, gankernels; from gankernels._extension import STATUS as s; print("imported", gankernels.__file__); print(s); sys.exit(0 if s.loaded and s.with_cuda else "gankernels._C is not loaded with its CUDA kernels")'
  rc=$(first_failure "$rc" "$?")
  return "$rc"
}

piece_test() {
  local log="$OUT/test.log"
  fresh_log "$log"
  [ "$DRY_RUN" = 1 ] || rm -f "$OUT/tests.xml"
  # -P: the installed gankernels (with _C), not the source tree; conftest puts tests/ itself on
  # sys.path. No -x: one run should show every failure.
  run_cmd "$log" "$(budget "$CAP_TEST")" "$ROOT" \
    env GANKERNELS_REQUIRE_C=1 \
    "$PYTHON" -P -m pytest tests -k "$TEST_SELECTION" -q -rfEs --durations=20 \
    -p no:cacheprovider --junitxml="$OUT/tests.xml"
}

piece_sanitize() {
  local sanitizer tool log started trc rc=0
  if ! sanitizer=$(find_sanitizer); then
    if [ "$DRY_RUN" = 1 ]; then
      sanitizer=compute-sanitizer
    else
      echo "gpu_check.sh: compute-sanitizer not found (PATH, \$CUDA_HOME, /usr/local/cuda)"
      for tool in "${SANITIZER_TOOLS[@]}"; do
        echo "compute-sanitizer not found (PATH, \$CUDA_HOME, /usr/local/cuda)" \
          >"$OUT/sanitize-$tool.log"
        write_status "sanitize-$tool" 127 0
      done
      return 127
    fi
  fi
  for tool in "${SANITIZER_TOOLS[@]}"; do
    log="$OUT/sanitize-$tool.log"
    fresh_log "$log"
    started=$SECONDS
    # No caching allocator: every tensor is its own allocation, so memcheck sees the true bounds.
    run_cmd "$log" "$(budget "$CAP_SANITIZE")" "$ROOT" \
      env PYTORCH_NO_CUDA_MEMORY_CACHING=1 \
      "$sanitizer" --tool "$tool" --error-exitcode 1 "${SANITIZER_EXTRA[@]}" \
      "$PYTHON" -P scripts/sanitize_subset.py --device cuda
    trc=$?
    [ "$DRY_RUN" = 1 ] || write_status "sanitize-$tool" "$trc" "$((SECONDS - started))"
    rc=$(first_failure "$rc" "$trc")
  done
  return "$rc"
}

piece_bench() {
  local log="$OUT/bench.log" rc
  fresh_log "$log"
  [ "$DRY_RUN" = 1 ] || rm -f "$OUT/bench.json" "$OUT/bench.md" "$OUT/bench.png"
  # GANKERNELS_BENCH_DEVICE=cuda: the full GPU size set, or an error if torch sees no GPU.
  run_cmd "$log" "$(budget "$CAP_BENCH")" "$ROOT" \
    env GANKERNELS_BENCH_DEVICE=cuda \
    "$PYTHON" -P -m pytest bench/ -q -p no:cacheprovider --bench-budget "$BENCH_BUDGET" \
    --benchmark-json "$OUT/bench.json"
  rc=$?
  if [ "$DRY_RUN" = 0 ] && [ ! -s "$OUT/bench.json" ]; then
    rm -f "$OUT/bench.json"  # pytest-benchmark opens it at start-up: an empty file
    echo "gpu_check.sh: no bench.json was written" | tee -a "$log"
    return $((rc == 0 ? 1 : rc))
  fi
  # `python -m bench.*` from the repository root, which must be on sys.path for that (bench is
  # a package there; it moves the root behind the installed gankernels).
  run_cmd "$log" "$(budget "$CAP_SMALL")" "$ROOT" \
    env -u PYTHONSAFEPATH "$PYTHON" -m bench.summarize "$OUT/bench.json" -o "$OUT/bench.md"
  rc=$(first_failure "$rc" "$?")
  run_cmd "$log" "$(budget "$CAP_SMALL")" "$ROOT" \
    env -u PYTHONSAFEPATH "$PYTHON" -m bench.plot "$OUT/bench.json" -o "$OUT/bench.png"
  rc=$(first_failure "$rc" "$?")
  return "$rc"
}

# line_of REGEX COMMAND...: the first line of the command's output that matches REGEX.
line_of() {
  local regex=$1 out
  shift
  out=$(timeout "$CAP_SMALL" "$@" 2>&1 | grep -m1 -E "$regex") && [ -n "$out" ] &&
    echo "$out" && return 0
  echo "(not available: $(quote_all "$@") failed)"
}

status_word() {  # PASS, FAIL (...) or NOT RUN, from OUTDIR/status/NAME
  local file="$OUT/status/$1" rc rest
  [ -f "$file" ] || { echo "NOT RUN"; return; }
  read -r rc rest <"$file"
  case "$rc" in
    0) echo "PASS" ;;
    124 | 137) echo "FAIL (timed out)" ;;
    *) echo "FAIL (exit $rc)" ;;
  esac
}

status_cell() {  # "PASS | 95 s, finished at ..." for the summary's table
  local file="$OUT/status/$1" rc secs when
  [ -f "$file" ] || { echo "NOT RUN | -"; return; }
  read -r rc secs when <"$file"
  echo "$(status_word "$1") | ${secs} s (finished ${when})"
}

nvcc_path() {
  command -v nvcc 2>/dev/null && return
  echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
}

test_counts() {  # passed/failed/errors/skipped from tests.xml, and the failed tests' names
  "$PYTHON" - "$OUT/tests.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"{n['tests']} tests: {passed} passed, {n['failures']} failed, {n['errors']} errors, "
      f"{n['skipped']} skipped.")
bad = [f"{c.get('classname')}::{c.get('name')}" for c in root.iter("testcase")
       if c.find("failure") is not None or c.find("error") is not None]
for name in bad[:15]:
    print(f"- failed: `{name}`")
if len(bad) > 15:
    print(f"- ... and {len(bad) - 15} more (test.log)")
EOF
}

write_summary() {
  local md="$OUT/summary.md" tool log reports calls api sanitizer versions built
  sanitizer=$(find_sanitizer) || sanitizer=compute-sanitizer
  versions=$(timeout "$CAP_SMALL" "$PYTHON" -P -c '
import torch
try:
    import triton
    t = triton.__version__
except ImportError:
    t = "not installed"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {t}")' 2>/dev/null) ||
    versions="(torch not importable)"
  {
    echo "# gankernels GPU check"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); output: \`$OUT\`"
    echo "- GPU: $(line_of . nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
    echo "- $versions"
    echo "- nvcc: $(line_of release "$(nvcc_path)" --version)"
    echo "- compute-sanitizer: $(line_of '[Vv]ersion' "$sanitizer" --version)"
    # From `gankernels info` (info.txt): "CUDA arch list: 9.0", "compiled kernels (_C): ..."
    built=$(grep -h -E '^(CUDA arch list|compiled kernels)' "$OUT/info.txt" 2>/dev/null | paste -sd';')
    echo "- build: ${built:-no info.txt (build not run)}"
    echo
    echo "| piece | status | wall time | logs |"
    echo "|---|---|---|---|"
    echo "| build | $(status_cell build) | build.log, info.txt |"
    echo "| test | $(status_cell test) | test.log, tests.xml |"
    echo "| sanitize | $(status_cell sanitize) | sanitize-{$(IFS=,; echo "${SANITIZER_TOOLS[*]}")}.log |"
    echo "| bench | $(status_cell bench) | bench.log, bench.json, bench.md, bench.png |"
    echo
    echo "## Tests"
    echo
    if [ -s "$OUT/tests.xml" ]; then
      test_counts || echo "(tests.xml could not be read)"
      [ "$(status_word test)" = "FAIL (timed out)" ] &&
        echo "- the run was cut short by its time limit: these counts cover the tests that ran"
    else
      echo "No tests.xml."
    fi
    echo
    echo "## compute-sanitizer"
    echo
    for tool in "${SANITIZER_TOOLS[@]}"; do
      log="$OUT/sanitize-$tool.log"
      if [ ! -f "$log" ]; then
        echo "- $tool: NOT RUN"
        continue
      fi
      # "========= ERROR SUMMARY: 0 errors" (and racecheck's "RACECHECK SUMMARY: ... hazards")
      reports=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | sed 's/^=* *//' | paste -sd';')
      calls=$(grep -m1 -E '^# [0-9]+ calls' "$log" | sed 's/^# //')
      # CUDA API calls that returned an error ("Program hit cudaError... on CUDA API call to
      # ..."): counted as errors, but unlike a kernel's bad access they may come from torch.
      api=$(grep -c 'Program hit' "$log")
      echo "- $tool: $(status_word "sanitize-$tool"); ${reports:-no ERROR SUMMARY line};" \
        "subset: ${calls:-did not finish} (sanitize-$tool.log)"
      [ "$api" -eq 0 ] ||
        echo "  - $api CUDA API error report(s), the first: \`$(grep -m1 'Program hit' "$log" | sed 's/^=* *//')\`"
    done
    echo
    echo "## Benchmarks"
    echo
    if [ -s "$OUT/bench.json" ]; then
      (cd "$ROOT" && timeout "$CAP_SMALL" env -u PYTHONSAFEPATH \
        "$PYTHON" -m bench.summarize "$OUT/bench.json" --readme) ||
        echo "(bench.summarize failed on bench.json)"
      echo
      echo "Full table: bench.md; chart: bench.png."
    else
      echo "No bench.json."
    fi
  } >"$md"
  echo "wrote $md"
}

piece_summary() {
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader"
    echo "+ $(quote "$PYTHON") -P -c 'import torch, triton; ...versions'; nvcc --version; compute-sanitizer --version"
    echo "+ read $OUT/status/*, tests.xml, sanitize-*.log; $(quote "$PYTHON") -m bench.summarize $(quote "$OUT/bench.json") --readme"
    echo "+ write $(quote "$OUT/summary.md")"
    return 0
  fi
  write_summary
}

# ---- main -------------------------------------------------------------------------------------

run_piece() {
  local piece=$1 started=$SECONDS rc
  echo "== $piece"
  "piece_$piece"
  rc=$?
  [ "$DRY_RUN" = 1 ] && return 0
  write_status "$piece" "$rc" "$((SECONDS - started))"
  echo "== $piece: $([ "$rc" -eq 0 ] && echo PASS || echo "FAIL (exit $rc)") in $((SECONDS - started)) s"
  return "$rc"
}

[ "$DRY_RUN" = 1 ] && echo "# dry run: gpu_check.sh would run, from $ROOT, within ${DEADLINE} s:"
failed=()
summarised=0
for piece in "${SELECTED[@]}"; do
  run_piece "$piece" || failed+=("$piece")
  [ "$piece" = summary ] && summarised=1
done
if [ "$summarised" = 0 ]; then
  if [ "$DRY_RUN" = 1 ]; then
    echo "# then $OUT/summary.md is rewritten from $OUT/status/*"
  else
    write_summary
  fi
fi
[ "$DRY_RUN" = 1 ] && exit 0
echo "gpu_check.sh: $((SECONDS - START)) s; ${#failed[@]} failed piece(s)${failed[*]:+: ${failed[*]}}"
[ "${#failed[@]}" -eq 0 ]
