#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads untrusted bytes (tests/fuzz),
# with AFL++ through cargo-afl on stable Rust. Runs the targets one after another
# (the machine's cores are shared), each for SECONDS, then prints per target the
# executions, exec/s, crashes, hangs and corpus size. Exits 1 if any target
# crashed (a panic: a parser panicked or broke a property), naming the crash file
# and the command that replays it.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
# Env:   FUZZ_OUT (default tests/fuzz/out), AFL_OPT_LEVEL (default 1; 3 for long runs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
shift || true

CARGO_AFL_VERSION=0.18.2
scripts/install-deps.sh fuzz
if ! cargo afl --version 2>/dev/null | grep -q "$CARGO_AFL_VERSION"; then
  # Also builds AFL++ (afl-fuzz and the runtime) from the source the crate ships.
  cargo install cargo-afl --version "$CARGO_AFL_VERSION" --locked
fi
if ! out=$(cargo afl config --build 2>&1); then
  grep -q "already built" <<<"$out" || { echo "$out" >&2; exit 1; }
fi

cd tests/fuzz
fuzz_out=${FUZZ_OUT:-$root/tests/fuzz/out}
# cargo-afl compiles every crate with codegen-units=1 and its opt-level (3 by
# default): the build is most of a short CI pass. Opt-level 1, and --target so that
# build scripts and proc-macros build normally, uninstrumented, took 3m14s of CPU
# against 5m19s at opt-level 2 without --target. Long runs: AFL_OPT_LEVEL=3.
export AFL_OPT_LEVEL=${AFL_OPT_LEVEL:-1}
host=$(rustc -vV | sed -n 's/^host: //p')
echo "building the fuzz targets (cargo afl build, opt-level $AFL_OPT_LEVEL)" >&2
cargo afl build --release --locked --features afl --bin afl-target --target-dir target/afl \
  --target "$host"
bin=$PWD/target/afl/$host/release/afl-target

targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(sed -n 's/^ *name: "\([a-z_]*\)",$/\1/p' src/lib.rs)
fi

# Run non-interactively, on any core, whatever the machine's core dump and CPU
# frequency settings (a CI runner's, not ours to change).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  AFL_NO_AFFINITY=1
failed=0
summary=()
for t in "${targets[@]}"; do
  case $t in
    oci_archive | docker_archive) dict=dict/archive.dict max_len=65536 ;;
    *) dict=dict/$t.dict max_len=16384 ;;
  esac
  corpus=corpus/$t
  [ -d "$corpus" ] || { echo "no corpus for target $t" >&2; exit 2; }
  out_dir=$fuzz_out/$t
  rm -rf "$out_dir"
  mkdir -p "$out_dir"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ocibench-fuzz-$t.XXXXXX")
  [ -d /dev/shm ] && { rmdir "$tmp"; tmp=$(mktemp -d "/dev/shm/ocibench-fuzz-$t.XXXXXX"); }
  echo "fuzzing $t for ${secs}s" >&2
  dict_args=()
  [ -f "$dict" ] && dict_args=(-x "$dict")
  set +e
  OCIBENCH_FUZZ_TMP=$tmp cargo afl fuzz -i "$corpus" -o "$out_dir" -V "$secs" -t 5000 -G "$max_len" \
    "${dict_args[@]}" -- "$bin" "$t" >"$out_dir/afl.log" 2>&1
  status=$?
  set -e
  rm -rf "$tmp"
  stats=$out_dir/default/fuzzer_stats
  if [ ! -f "$stats" ]; then
    echo "afl-fuzz did not start for $t (exit $status); its log:" >&2
    tail -n 30 "$out_dir/afl.log" >&2
    exit 1
  fi
  stat() { sed -n "s/^$1 *: *//p" "$stats"; }
  crashes=$(stat saved_crashes)
  hangs=$(stat saved_hangs)
  summary+=("$(printf '%-17s %12s %9s %7ss %8s %6s %7s' "$t" "$(stat execs_done)" \
    "$(stat execs_per_sec)" "$(stat run_time)" "$crashes" "$hangs" "$(stat corpus_count)")")
  for kind in crashes hangs; do
    for f in "$out_dir"/default/"$kind"/id:*; do
      [ -e "$f" ] || continue
      echo "$t: $kind: $f" >&2
      echo "  replay: cargo run --manifest-path tests/fuzz/Cargo.toml --bin replay -- $t '$f'" >&2
    done
  done
  ((crashes > 0)) && failed=1
done

printf '%-17s %12s %9s %8s %8s %6s %7s\n' target execs exec/s time crashes hangs corpus
printf '%s\n' "${summary[@]}"
if ((failed)); then
  echo "fuzzing found crashes (above); findings are under $fuzz_out" >&2
  exit 1
fi
