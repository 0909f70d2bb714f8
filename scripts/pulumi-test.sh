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
# shellcheck source=scripts/python-venv.sh
source scripts/python-venv.sh
python_venv_install "$venv" "$wanted" 11 "${LEDGER_PULUMI_PYTHON:-}" -- -r "$requirements" ||
  fail "the Pulumi tests need ${requirements} in ${venv} (set LEDGER_PULUMI_PYTHON)"
"${venv}/bin/python" -c 'import pulumi, pulumi_aws, pytest' || fail "the venv ${venv} cannot import pulumi, pulumi_aws and pytest"

# No bytecode or pytest cache left in the repository.
export PYTHONDONTWRITEBYTECODE=1
status=0
(cd infra/pulumi && "${venv}/bin/python" -m pytest -q -p no:cacheprovider tests) || status=$?
case "$status" in
  0) echo "pulumi-test: all passed" ;;
  5) fail "pytest collected no tests in infra/pulumi/tests" ;;
  *) fail "pytest failed (exit ${status})" ;;
esac
