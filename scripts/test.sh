#!/usr/bin/env bash
# The project's one test command (README, .ci/run):
#
#   ./scripts/test.sh [go test flags] [packages]
#
# 1. starts the real test services (scripts/services.sh up: PostgreSQL, Redis,
#    NATS, Kafka on 127.0.0.1; see docs/testing.md),
# 2. runs `go vet` on the packages,
# 3. runs `go test -race -count=1 -timeout 20m` on the packages.
#
# Packages default to ./... . Arguments that look like package patterns (".",
# "./x", "../x", "./x/..." or a path under github.com/grainline/grainline)
# replace that list; every other argument is passed to go test as a flag, e.g.
#
#   ./scripts/test.sh -run TestCommit -v ./connectors/...
#
# Flags given here come after the defaults, so `-timeout 40m` or `-count=3`
# override them. The exit code is go test's; when go test passes but go vet
# failed, it is go vet's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null || {
	echo "test: the go tool is not on PATH" >&2
	exit 1
}

flags=()
packages=()
for arg in "$@"; do
	case $arg in
	. | ./* | ../* | github.com/grainline/grainline | github.com/grainline/grainline/*) packages+=("$arg") ;;
	*) flags+=("$arg") ;;
	esac
done
((${#packages[@]})) || packages=(./...)

./scripts/services.sh up

echo "test: go vet ${packages[*]}" >&2
vet=0
go vet "${packages[@]}" || vet=$?

echo "test: go test -race -count=1 -timeout 20m ${flags[*]:+${flags[*]} }${packages[*]}" >&2
rc=0
go test -race -count=1 -timeout 20m "${flags[@]}" "${packages[@]}" || rc=$?

if ((rc == 0 && vet != 0)); then
	echo "test: go vet failed (exit $vet)" >&2
	rc=$vet
fi
exit "$rc"
