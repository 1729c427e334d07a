#!/usr/bin/env bash
# Makes the databases tests/api/upgrade.rs upgrades: this checkout's release tells the story
# of upgrade::this_release_leaves_a_database_the_next_can_upgrade on SQLite and on
# PostgreSQL, and what it left becomes tests/fixtures/upgrade/. Run it on the last landed
# commit before adding a migration, and commit the result with the migration.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh >/dev/null
if [ -n "$(git status --porcelain -- src migrations)" ]; then
  echo "src/ or migrations/ has uncommitted changes: the fixture must be made by a landed release" >&2
  exit 1
fi
for engine in sqlite postgres; do
  TEST_DATABASE=$engine cargo test --features ssr --test api \
    upgrade::this_release_leaves_a_database_the_next_can_upgrade -- --exact
  rm -rf "tests/fixtures/upgrade/$engine"
  mkdir -p tests/fixtures/upgrade
  cp -r "$CARGO_TARGET_DIR/tmp/upgrade-fixture/$engine" "tests/fixtures/upgrade/$engine"
done
git rev-parse HEAD > tests/fixtures/upgrade/MADE_BY
echo "tests/fixtures/upgrade/ now holds the databases of $(cat tests/fixtures/upgrade/MADE_BY)"
