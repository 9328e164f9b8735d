#!/usr/bin/env bash
# Refreshes advisory-db/, the committed snapshot of the RustSec advisory database that .ci/run
# audits the lockfiles against (CI machines may not reach github.com).
#
#   scripts/refresh-advisory-db.sh [ADVISORY_DB_CHECKOUT]
#
# ADVISORY_DB_CHECKOUT is a clone of https://github.com/rustsec/advisory-db (bare or not);
# without it the database is cloned into a temporary folder. The snapshot keeps only the
# advisories of crates in this repository's Cargo.lock files (crates/<name>/, as in the
# database), plus crate-names.txt: every crate the database has advisories for, so that
# .ci/run can tell when a lockfile gains a crate whose advisories the snapshot lacks. Run it
# after adding dependencies, and from time to time for new advisories. The data is CC0-1.0.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z "$src" ]]; then
    git clone --quiet --bare --depth 1 https://github.com/rustsec/advisory-db "$tmp/db.git"
    src="$tmp/db.git"
fi
# Works for a bare repository and for a checkout alike.
gitdb() { git --git-dir="$(git -C "$src" rev-parse --absolute-git-dir)" "$@"; }
commit=$(gitdb rev-parse HEAD)
date=$(gitdb log -1 --format=%cI HEAD)
mkdir "$tmp/all"
gitdb archive HEAD crates | tar -x -C "$tmp/all"

out=advisory-db
rm -rf "$out/crates" "$out/crate-names.txt"
mkdir -p "$out/crates"
ls "$tmp/all/crates" | LC_ALL=C sort >"$out/crate-names.txt"
git ls-files -- '*Cargo.lock' | xargs sed -n 's/^name = "\(.*\)"$/\1/p' | LC_ALL=C sort -u |
    while read -r name; do
        if [[ -d "$tmp/all/crates/$name" ]]; then
            cp -r "$tmp/all/crates/$name" "$out/crates/"
        fi
    done
cat >"$out/README.md" <<README
# RustSec advisory database (partial snapshot)

The advisories of the crates in this repository's \`Cargo.lock\` files, copied from
<https://github.com/rustsec/advisory-db> (CC0-1.0) at commit \`$commit\` ($date).
\`crate-names.txt\` lists every crate the database had advisories for at that commit.

\`.ci/run\` audits the lockfiles against this snapshot with \`cargo audit --no-fetch\`, and fails
when a lockfile names a crate of \`crate-names.txt\` whose advisories are not here. Refresh it
with \`scripts/refresh-advisory-db.sh\` after adding dependencies, and from time to time.
README
echo "advisory-db/: $(ls "$out/crates" | wc -l) crates with advisories, from $commit ($date)"
