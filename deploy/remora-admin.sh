#!/bin/sh
# /usr/local/bin/remora-admin (installed by deploy/install.sh): Remora Admin's manage.py on
# this server, run as the remora user with the settings in /etc/remora/remora.env, as the
# systemd units run it. Examples: remora-admin createsuperuser; remora-admin load_topology.
set -eu
ENV_FILE=/etc/remora/remora.env
if [ "$(id -u)" != 0 ]; then
  echo "remora-admin: run it as root (sudo remora-admin ...): it reads $ENV_FILE" >&2
  exit 1
fi
while IFS= read -r line || [ -n "$line" ]; do
  case $line in
  '' | '#'*) continue ;;
  [A-Za-z_]*=*) export "${line?}" ;; # taken as it is, like systemd's EnvironmentFile
  *) echo "remora-admin: $ENV_FILE: not KEY=value: $line" >&2; exit 2 ;;
  esac
done <"$ENV_FILE"
export HOME=/var/lib/remora PYTHONUNBUFFERED=1
cd /var/lib/remora
exec setpriv --reuid=remora --regid=remora --init-groups -- \
  /opt/remora/venv/bin/python -m remora_admin "$@"
