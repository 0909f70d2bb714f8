#!/usr/bin/env bash
# One way to install a pinned Python tool into a cache venv (under ~/.cache/ledger, never the
# repository), shared by fuzz.sh (schemathesis), cargo-lambda.sh and pulumi-test.sh. Source it, then:
#
#   python_venv_install VENV IDENTITY MIN_MINOR PREFERRED_PYTHON -- PIP_ARGS...
#
# VENV is made with the first of PREFERRED_PYTHON (may be empty), python3.11, python3 that is Python
# 3.MIN_MINOR or newer, and gets `pip install PIP_ARGS`. It is complete only once its marker file
# holds IDENTITY (say, the hash of the requirements it was built from); a complete venv is reused, any
# other is made again. Returns non-zero, having said why on stderr, when it cannot be made.

python_venv_install() {
  local venv="$1" identity="$2" min_minor="$3" preferred="$4"
  shift 4
  [[ "${1:-}" == "--" ]] && shift
  local marker="${venv}/.ledger-complete" python="" candidate
  if [[ -x "${venv}/bin/python" && -f "$marker" && "$(cat "$marker")" == "$identity" ]]; then
    return 0
  fi
  for candidate in "$preferred" python3.11 python3; do
    if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null &&
      "$candidate" -c "import sys; sys.exit(sys.version_info < (3, ${min_minor}))" 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
  if [[ -z "$python" ]]; then
    echo "python-venv: ${venv} needs Python 3.${min_minor} or newer with venv and pip" >&2
    return 1
  fi
  echo "python-venv: installing $* into ${venv}"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv"; then
    echo "python-venv: could not create ${venv} with ${python} (is its venv module installed?)" >&2
    return 1
  fi
  if ! "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv "$@"; then
    echo "python-venv: could not install $* into ${venv} (network? PyPI?)" >&2
    return 1
  fi
  echo "$identity" >"$marker"
}
