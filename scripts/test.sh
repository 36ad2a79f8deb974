#!/usr/bin/env bash
# The whole test suite: installs what the tests need, starts a throw-away
# MariaDB on 127.0.0.1, runs go vet and every Go test (unit, fuzz seed
# corpora, golden tests against tshark and the generator, end-to-end tests
# with real clients), then stops the database.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

export VOIPSENSOR_TEST_MYSQL_DSN
VOIPSENSOR_TEST_MYSQL_DSN=$(scripts/mariadb-test.sh start)
if [ -z "$VOIPSENSOR_TEST_MYSQL_DSN" ]; then
	echo "test.sh: scripts/mariadb-test.sh start printed no DSN" >&2
	exit 1
fi
export VOIPSENSOR_TEST_MYSQL_CTL=$PWD/scripts/mariadb-test.sh
trap 'scripts/mariadb-test.sh stop >/dev/null 2>&1 || true' EXIT

go vet ./...
# staticcheck, pinned, from the Go module proxy (installed into GOBIN).
staticcheck_version=v0.8.2
staticcheck="$(go env GOPATH)/bin/staticcheck"
if ! "$staticcheck" -version 2>/dev/null | grep -q "(${staticcheck_version#v})"; then
	go install "honnef.co/go/tools/cmd/staticcheck@${staticcheck_version}"
fi
"$staticcheck" ./...
go test -count=1 -timeout 20m ./...
