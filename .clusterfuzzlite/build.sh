#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every cargo-fuzz target into $OUT, each
# with its seed corpus zip encoded from corpus/.
#
# The builder copies the repository to $SRC/rmaplab, this script to
# $SRC/build.sh, and runs `bash -eux $SRC/build.sh`. Outside Docker it runs
# the same way from a checkout (OUT=/tmp/out bash .clusterfuzzlite/build.sh);
# `.ci/run` does it in the builder's layout.
set -eu
if [ -n "${SRC:-}" ] && [ -f "$SRC/rmaplab/Cargo.toml" ]; then
  cd "$SRC/rmaplab"
else
  cd "$(dirname "$0")/.."
fi
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"

# The builder sets SANITIZER (address, memory, undefined, coverage). Rust has
# address and memory sanitizers; for coverage the builder's cargo wrapper adds
# the instrumentation itself; without a builder (or for undefined) build
# without a sanitizer, which safe Rust does not need (stable toolchain).
case "${SANITIZER:-none}" in
  address | memory) sanitizer=(-s "$SANITIZER") ;;
  coverage) sanitizer=() ;;
  *) sanitizer=(-s none) ;;
esac
cargo fuzz build -O "${sanitizer[@]}"

targets=$(cd fuzz/fuzz_targets && ls *.rs | sed "s/\.rs$//")
fuzz_target_dir="${CARGO_TARGET_DIR:-fuzz/target}"
triple=$(rustc -vV | sed -n 's/^host: //p')
for t in $targets; do
  cp "$fuzz_target_dir/$triple/release/$t" "$OUT/$t"
done

# libFuzzer options the runner reads beside each binary: differential runs
# without the entropic schedule, as the hunts and the nightly job run it.
printf '[libfuzzer]\nentropic = 0\n' > "$OUT/differential.options"

# Seed corpora: the differential target's seeds are the corpus files
# encoded by the decoder's inverse; the parse target reads .ops text.
# The encoder is a host tool: built without the fuzzing flags.
seeds=$(mktemp -d)
RUSTFLAGS="" cargo run -q --release -p rmaplab -- seeds corpus --out "$seeds/differential"
mkdir -p "$seeds/parse"
find corpus -name '*.ops' -exec cp {} "$seeds/parse/" \;
for t in $targets; do
  [ -d "$seeds/$t" ] || continue
  rm -f "$OUT/${t}_seed_corpus.zip"
  (cd "$seeds/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
done
rm -rf "$seeds"
echo "built: $(ls "$OUT" | tr '\n' ' ')"
