#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: the cargo-fuzz targets into $OUT, with
# seed corpora encoded from corpus/. Also runs outside Docker:
#   OUT=/tmp/out .clusterfuzzlite/build.sh
# (a test does exactly that). In the OSS-Fuzz image `cargo fuzz build` uses
# the image's nightly and sanitizers; locally it builds with `-s none`.
set -eu
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
if [ -n "${SANITIZER:-}" ] && [ "${SANITIZER}" != "none" ]; then
  cargo fuzz build -O
else
  cargo fuzz build -O -s none
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
for t in differential parse; do
  cp "${CARGO_TARGET_DIR:-fuzz/target}/$triple/release/$t" "$OUT/$t"
done
cargo run -q --release -p rmaplab -- seeds corpus --out "$OUT/seeds"
(cd "$OUT/seeds" && zip -q -r "$OUT/differential_seed_corpus.zip" .) 2>/dev/null \
  || tar -C "$OUT/seeds" -cf "$OUT/differential_seed_corpus.tar" .
rm -rf "$OUT/seeds"
echo "built: $(ls "$OUT")"
