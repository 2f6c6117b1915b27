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
