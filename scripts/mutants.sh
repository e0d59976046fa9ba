#!/usr/bin/env bash
# Mutation testing of the impls crate with cargo-mutants, one shard at a
# time (docs/mutation-testing.md).
#
#   scripts/mutants.sh SHARD [K/N]   run one shard, or slice K of N of it
#   scripts/mutants.sh --list        the shards and the nightly rotation
#   scripts/mutants.sh --nightly     today's shard of the rotation
#
# A shard is a module of impls/src: arena, rmap, mmu/mod, mmu/vma,
# mmu/mremap, mmu/fault, mmu/fork, mmu/swap, mmu/mprotect, mmu/madvise,
# mmu/census, mmu/block, sched, designs/avc, designs/chain_2010,
# designs/prealloc_2026, designs/single_list_2004, designs/registry; `all`
# is every one of them
# (for a sample across the crate with K/N). K/N is cargo-mutants'
# `--shard` (round-robin, K counted from 0), for the big modules.
# Results go to out/mutants/SHARD[-K-of-N]/mutants.out (caught.txt,
# missed.txt, timeout.txt, unviable.txt, outcomes.json) and a summary line
# to out/mutants/summary.txt. Settings (test packages, release profile,
# timeouts) are in .cargo/mutants.toml. MUTANTS_JOBS sets cargo-mutants'
# --jobs (default 1), MUTANTS_ARGS adds options (e.g. `--re PATTERN`). Exit status 2 when a mutant was missed or timed out.
set -euo pipefail
cd "$(dirname "$0")/.."

# Module -> the files it covers (globs relative to the workspace root).
files_of() {
  case "$1" in
    arena) echo "impls/src/arena.rs" ;;
    rmap) echo "impls/src/rmap.rs impls/src/state.rs" ;;
    mmu/mod) echo "impls/src/mmu/mod.rs" ;;
    mmu/vma | mmu/mremap | mmu/fault | mmu/fork | mmu/swap | mmu/mprotect | mmu/madvise | \
      mmu/census | mmu/block)
      echo "impls/src/$1.rs" ;;
    sched) echo "impls/src/sched/*.rs" ;;
    designs/avc) echo "impls/src/designs/avc/*.rs" ;;
    designs/chain_2010 | designs/prealloc_2026 | designs/single_list_2004)
      echo "impls/src/$1.rs" ;;
    designs/registry)
      echo "impls/src/designs/registry.rs impls/src/designs/registry/*.rs impls/src/designs/mod.rs" ;;
    all) echo "" ;;
    *) return 1 ;;
  esac
}

# The nightly rotation: every module, the big ones (more than about 120
# mutants) split into slices so one night stays near an hour on 4 cores.
ROTATION=(
  arena rmap
  mmu/mod:0/3 mmu/mod:1/3 mmu/mod:2/3
  mmu/vma:0/2 mmu/vma:1/2 mmu/mremap:0/2 mmu/mremap:1/2
  mmu/fault mmu/fork mmu/swap:0/2 mmu/swap:1/2 mmu/mprotect mmu/madvise
  mmu/census:0/2 mmu/census:1/2 mmu/block sched:0/2 sched:1/2
  designs/avc:0/2 designs/avc:1/2 designs/chain_2010 designs/prealloc_2026
  designs/single_list_2004 designs/registry:0/2 designs/registry:1/2
)

case "${1:-}" in
  "" | -h | --help)
    sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0 ;;
  --list)
    for s in "${ROTATION[@]}"; do echo "$s"; done
    exit 0 ;;
  --nightly)
    day=$((10#$(date -u +%j)))
    entry=${ROTATION[$((day % ${#ROTATION[@]}))]}
    shard=${entry%%:*}
    slice=""
    [[ $entry == *:* ]] && slice=${entry#*:}
    ;;
  *)
    shard=$1
    slice=${2:-}
    ;;
esac

if ! files=$(files_of "$shard"); then
  echo "unknown shard '$shard' (scripts/mutants.sh --list)" >&2
  exit 1
fi
if [[ -n $slice && ! $slice =~ ^[0-9]+/[0-9]+$ ]]; then
  echo "slice '$slice' is not K/N" >&2
  exit 1
fi
if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi

name=$shard
[[ -n $slice ]] && name="$shard-${slice%/*}-of-${slice#*/}"
out="out/mutants/$name"
mkdir -p "$out"
# The build timeout is explicit: cargo-mutants derives it from the
# baseline build, which takes no time when the tree is already built.
args=(-p rmaplab-impls --output "$out" --colors never --build-timeout 900)
[[ -n ${MUTANTS_JOBS:-} ]] && args+=(--jobs "$MUTANTS_JOBS")
for f in $files; do args+=(--file "$f"); done
[[ -n $slice ]] && args+=(--shard "$slice" --sharding round-robin)

# Release builds, incremental and without debug info: a mutant rebuilds
# impls and relinks the test binaries in about 20 s instead of a
# from-scratch optimised build.
export CARGO_PROFILE_RELEASE_INCREMENTAL=true CARGO_PROFILE_RELEASE_DEBUG=0
cargo build --release -q --tests -p rmaplab-impls -p rmaplab

rc=0
# shellcheck disable=SC2086 # MUTANTS_ARGS: extra cargo-mutants options, split on spaces
cargo mutants "${args[@]}" ${MUTANTS_ARGS:-} || rc=$?
# 0 all caught, 2 missed, 3 timeouts, 4 baseline failed (cargo-mutants).
dir="$out/mutants.out"
count() { [ -f "$dir/$1.txt" ] && wc -l < "$dir/$1.txt" || echo 0; }
line="$name: caught $(count caught), missed $(count missed), timeouts $(count timeout), unviable $(count unviable)"
echo "$line" | tee -a out/mutants/summary.txt
if [ -s "$dir/missed.txt" ]; then
  echo "missed:"
  cat "$dir/missed.txt"
fi
case $rc in
  0) exit 0 ;;
  2 | 3) exit 2 ;;
  *) echo "cargo mutants failed (exit $rc)" >&2; exit "$rc" ;;
esac
