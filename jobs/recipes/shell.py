"""Bash pieces every recipe module shares, written once."""

# `apt_get ARGS...`: apt-get that waits for the package locks another apt run holds (an
# unattended upgrade, a person) instead of failing at once; other errors fail at once.
APT_GET = r"""
apt_get() {
  local out
  for _ in $(seq 1 150); do
    if out=$(apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Use-Pty=0 "$@" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    case "$out" in
      *"Could not get lock"* | *"Unable to lock"*) sleep 2 ;;
      *) printf '%s\n' "$out" >&2; return 1 ;;
    esac
  done
  printf '%s\n' "$out" >&2
  return 1
}
"""


# `ensure_installed PACKAGE...`: install from Debian those not installed yet. `ensure_running
# UNIT reload|restart LABEL`: enabled and running; reloaded or restarted when the caller set
# config_changed=1. Both set changed=1 when they act (the caller's "already in place" test).
ENSURE = r"""
ensure_installed() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if [ "${#missing[@]}" = 0 ]; then return 0; fi
  echo "Installing ${missing[*]} from Debian"
  apt_get update -q
  DEBIAN_FRONTEND=noninteractive apt_get install -y -q "${missing[@]}"
  changed=1
}
ensure_running() {
  local unit=$1 how=$2 label=$3
  if ! systemctl is-enabled --quiet "$unit"; then
    systemctl enable "$unit"
    changed=1
  fi
  if ! systemctl is-active --quiet "$unit"; then
    systemctl start "$unit"
    echo "Started $label"
    changed=1
  elif [ "${config_changed:-0}" = 1 ]; then
    systemctl "$how" "$unit"
    echo "${how^}ed $label with the new configuration"
  fi
}
"""
