#!/usr/bin/env bash
# Regenerates the cost claims: docs/cost/claims.md (the table the README
# quotes) and one SVG chart per claim under docs/cost/. Deterministic: with
# nothing changed, the files come out byte-identical.
#
#   scripts/claims.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rmaplab
mkdir -p docs/cost
target/release/rmaplab cost --claims --plot docs/cost > docs/cost/claims.md
echo "wrote docs/cost/claims.md and docs/cost/claim*.svg"
