#!/usr/bin/env bash
# The nightly fuzzing job: seed, minimise, fuzz every target with all cores,
# minimise and import new crashes into corpus/found/, print a summary.
#
#   scripts/nightly.sh [MINUTES_PER_TARGET]   (default 10)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on stable with
# `-s none` (docs/fuzzing.md). Optional: cargo-afl for the AFL
# leg (skipped when absent). With NIGHTLY_MUTANTS=1, also today's shard of
# the mutation-testing rotation (scripts/mutants.sh --nightly); the
# workflow runs that leg as its own job instead. Exit status 1 when a new
# failure was found (missed mutants are reported, not failures).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
secs=$((minutes * 60))
cores=$(nproc)
mkdir -p out/nightly
summary=out/nightly/summary.txt
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }

cargo build --release -q -p rmaplab
rmaplab=target/release/rmaplab

say "== nightly $(date -u +%FT%TZ), $cores cores, $minutes min per target"

# 1. Seeds: every corpus file the decoder can express, plus yesterday's corpus.
mkdir -p fuzz/corpus/differential fuzz/corpus/parse
"$rmaplab" seeds corpus --out fuzz/corpus/differential
find corpus -name '*.ops' -exec cp {} fuzz/corpus/parse/ \;

# 2. Minimise the corpus (cmin), then fuzz each target with every core.
cargo fuzz build -s none -O --no-trace-compares
for t in differential parse; do
  cargo fuzz cmin -s none -O "$t" >/dev/null 2>&1 || true
  # differential without the entropic schedule, as the hunts run it
  # (docs/fuzzing.md, "The libFuzzer target decides as the built-in engine").
  flags=(); [ "$t" = differential ] && flags=(-entropic=0)
  cargo fuzz run -s none -O --no-trace-compares "$t" -- "${flags[@]}" -fork="$cores" -max_total_time="$secs" \
      -print_final_stats=1 > "out/nightly/$t.log" 2>&1 || true
  say "$t: $(grep -o 'stat::average_exec_per_sec:.*' "out/nightly/$t.log" | tail -1) \
$(grep -c 'Test unit written' "out/nightly/$t.log" || true) crash(es)"
done

# 3. AFL leg, if cargo-afl is installed.
if cargo afl --version >/dev/null 2>&1; then
  cargo afl build --release --manifest-path fuzz/Cargo.toml --no-default-features \
      --features afl --bin differential_afl -q
  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    timeout $((secs + 30)) cargo afl fuzz -i fuzz/corpus/differential -o out/nightly/afl \
      -V "$secs" fuzz/target/release/differential_afl > out/nightly/afl.log 2>&1 || true
  say "afl: $(grep -E '^execs_per_sec|^saved_crashes' out/nightly/afl/default/fuzzer_stats 2>/dev/null | tr '\n' ' ')"
fi

# 4. The built-in engine, all cores.
"$rmaplab" fuzz --seconds "$secs" --keep-going --out out/nightly/builtin \
    > out/nightly/builtin.log 2>&1 || true
say "builtin: $(grep '^done' out/nightly/builtin.log | tail -1)"

# 4b. The live kernel, when this host can serve it (root, readable PFNs):
# a quarter of the per-target time of random streams on the kernel and the
# designs. Each disagreement is written shrunk, with the kernel's dumps as
# its expected layout, so it fails `cargo test` until the emulator agrees.
kernel_secs=$((secs / 4 > 30 ? secs / 4 : 30))
krmaplab=("$rmaplab")
if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then
  krmaplab=(sudo -n "$rmaplab")   # a CI runner: root through passwordless sudo
fi
set +e
"${krmaplab[@]}" kernel corpus/live-kernel/e3-cow-reuse.ops > out/nightly/kernel-probe.log 2>&1
probe=$?
set -e
if [ "$probe" -eq 3 ]; then
  say "kernel: not run: this host cannot serve the live-kernel backend ($(grep -m1 -i 'cannot\|needs\|not' out/nightly/kernel-probe.log || echo 'exit 3'))"
else
  "${krmaplab[@]}" kernel --fuzz --seconds "$kernel_secs" --jobs "$cores" --out out/nightly/kernel \
      > out/nightly/kernel.log 2>&1 || true
  say "kernel: $(grep -E '^done|streams' out/nightly/kernel.log | tail -1)"
fi

# 5. Minimise and import every crash. `cargo fuzz tmin` writes
# minimized-from-<sha1 of the crash>; only that file belongs to this crash
# (an older minimized-from-* belongs to another one). When tmin fails, the
# crash itself is imported.
mkdir -p corpus/found corpus/parse-crashes
new=0
minimized() { # TARGET CRASH -> the minimized input, or the crash
  local sha min
  sha=$(sha1sum "$2" | cut -d' ' -f1)
  min="fuzz/artifacts/$1/minimized-from-$sha"
  rm -f "$min"
  if cargo fuzz tmin -s none -O "$1" "$2" -- -runs=2000 >/dev/null 2>&1 && [ -f "$min" ]; then
    echo "$min"
  else
    echo "$2"
  fi
}
for crash in fuzz/artifacts/differential/crash-* out/nightly/afl/default/crashes/id:*; do
  [ -f "$crash" ] || continue
  name=$(basename "$crash" | tr ':,' '__')
  min=$(minimized differential "$crash")
  "$rmaplab" import "$min" --out "out/nightly/$name.ops"
  "$rmaplab" shrink "out/nightly/$name.ops" --out "corpus/found/$name.ops" || true
  new=$((new + 1))
done
# A parse crash is a text input on which the parser panicked or did not
# round-trip: kept as raw bytes, replayed by the `parse_crashes` test.
for crash in fuzz/artifacts/parse/crash-*; do
  [ -f "$crash" ] || continue
  cp "$(minimized parse "$crash")" "corpus/parse-crashes/$(basename "$crash")"
  new=$((new + 1))
done
for f in out/nightly/kernel/*.ops; do
  [ -f "$f" ] || continue
  cp "$f" "corpus/found/kernel-$(basename "$f")" && new=$((new + 1))
done
for f in out/nightly/builtin/*.ops; do
  [ -f "$f" ] || continue
  cp "$f" corpus/found/ && new=$((new + 1))
done
say "new failures imported into corpus/found/ and corpus/parse-crashes/: $new"

# 6. Mutation testing, one shard a night (docs/mutation-testing.md).
if [ "${NIGHTLY_MUTANTS:-0}" = 1 ]; then
  scripts/mutants.sh --nightly > out/nightly/mutants.log 2>&1 || true
  say "mutants: $(tail -1 out/mutants/summary.txt 2>/dev/null)"
fi
[ "$new" -eq 0 ]
