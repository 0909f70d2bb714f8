#!/usr/bin/env bash
# Unit tests of the Pulumi program (infra/pulumi) under Pulumi's mocks: no Pulumi CLI, no AWS
# credentials, no cloud. Installs infra/pulumi/requirements.txt (pinned pulumi, pulumi-aws, pytest)
# into a cache venv (~/.cache/ledger/pulumi-<hash of the requirements>, never the repository), then runs
# pytest. Any failure, or no test collected, exits non-zero. Run alone: ./scripts/pulumi-test.sh
#
#   LEDGER_PULUMI_PYTHON  the Python (3.11 or newer) that builds the venv (default python3.11, python3)
set -euo pipefail
cd "$(dirname "$0")/.."

requirements="infra/pulumi/requirements.txt"
fail() { printf 'pulumi-test: %s\n' "$*" >&2; exit 1; }

[[ -f "$requirements" ]] || fail "no ${requirements}"
for pin in pulumi==3.272.0 pulumi-aws==7.51.1 pytest==9.2.0; do
  grep -qx "$pin" "$requirements" || fail "${requirements} does not pin ${pin}"
done
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
venv="${HOME}/.cache/ledger/pulumi-${wanted:0:16}"
# The venv is complete only once this marker holds the hash of the requirements it was built from.
marker="${venv}/.ledger-requirements.sha256"

if ! [[ -x "${venv}/bin/python" && -f "$marker" && "$(cat "$marker")" == "$wanted" ]]; then
  python=""
  for candidate in "${LEDGER_PULUMI_PYTHON:-}" python3.11 python3; do
    if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
  [[ -n "$python" ]] || fail "needs Python 3.11 or newer with venv and pip (set LEDGER_PULUMI_PYTHON)"
  echo "pulumi-test: installing ${requirements} into ${venv}"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" || fail "could not create the venv ${venv} with ${python} (is its venv module installed?)"
  "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
    -r "$requirements" || fail "could not install ${requirements} into ${venv} (network? PyPI?)"
  "${venv}/bin/python" -c 'import pulumi, pulumi_aws, pytest' || fail "the venv ${venv} cannot import pulumi, pulumi_aws and pytest"
  echo "$wanted" >"$marker"
fi

# No bytecode or pytest cache left in the repository.
export PYTHONDONTWRITEBYTECODE=1
status=0
(cd infra/pulumi && "${venv}/bin/python" -m pytest -q -p no:cacheprovider tests) || status=$?
case "$status" in
  0) echo "pulumi-test: all passed" ;;
  5) fail "pytest collected no tests in infra/pulumi/tests" ;;
  *) fail "pytest failed (exit ${status})" ;;
esac
