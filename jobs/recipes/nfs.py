"""The two data-file directories over NFS: the server's exports and the front ends' mounts.

The server is NFS-Ganesha (Debian's `nfs-ganesha` with its VFS backend), not the kernel's NFS
server: it runs in user space, the same on a real server and in the lab (whose kernel has no
NFS server), and it re-reads its exports on a reload without the restart that would start a
grace period. It serves NFSv4 and NFSv3 over TCP (port 2049; v3's mount protocol through
rpcbind, which the package brings): kernel clients take v4, the lab's userspace client speaks v3.
Each directory is exported read-write to the named front-end hosts, by their service addresses,
and to nobody else (the export's own access is None); root on a client is squashed to nobody
(65534), so files are written as the web server's user. The directories belong to www-data.

A front end mounts them through /etc/fstab at the same paths, so the application's
`REPO_PATH` and `PUBLIC_STAGING_PATH` are the same on every front end; the mount is started as
systemd's mount unit for the path (it comes back at boot) and checked writable by www-data.
"""

import ipaddress
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from hosts.models import Host, Service, ServiceKind

from ..ssh import quote as q
from .base import Category, Recipe, RecipeForm
from .paths import OWN_DIR, absolute_path, system_path, within
from .shell import APT_GET, ENSURE

CONFIG = "/etc/ganesha/ganesha.conf"
SERVER_PACKAGES = ("nfs-ganesha", "nfs-ganesha-vfs")
OPTION_RE = re.compile(r"^_?[a-z][a-z0-9_]*(=[A-Za-z0-9._]+)?$")
DEFAULT_OPTIONS = "rw,hard,noatime,_netdev"


def _ipv4(value: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None


def host_ipv4(entry: str, what: str) -> str:
    """An IPv4 address, or an inventory host name turned into its service address."""
    entry = entry.strip()
    if _ipv4(entry):
        return entry
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", entry):
        raise ValidationError(f"“{entry}” is not {what}: write an IPv4 address or a host name.")
    host = Host.objects.filter(name=entry).first()
    if host is None:
        raise ValidationError(f"“{entry}” is neither an IPv4 address nor a host of the inventory.")
    address = _ipv4(host.reach_address)
    if address is None:
        raise ValidationError(
            f"{entry}'s service address ({host.reach_address}) is not an IPv4 address; NFS "
            "needs one here: set the host's service address."
        )
    return address


def _nfs_service() -> Service | None:
    return (
        Service.objects.filter(kind=ServiceKind.NFS_SERVER, host__active=True)
        .select_related("host")
        .order_by("host__name")
        .first()
    )


def _dir_field(label: str, initial: str) -> forms.CharField:
    return forms.CharField(label=label, max_length=200, initial=initial, validators=[absolute_path])


class DataDirsForm(RecipeForm):
    """The two data-file directories (Remora's REPO_PATH and PUBLIC_STAGING_PATH)."""

    files_dir = _dir_field("Files directory (REPO_PATH)", "/srv/remora/files")
    staging_dir = _dir_field(
        "Public staging directory (PUBLIC_STAGING_PATH)", "/srv/remora/public-staging"
    )

    def exports_setting(self) -> list[str]:
        nfs = _nfs_service()
        return list(nfs.effective_settings.get("exports", [])) if nfs else []

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        exports = self.exports_setting()
        if len(exports) >= 2:
            self.fields["files_dir"].initial = exports[0]
            self.fields["staging_dir"].initial = exports[1]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("files_dir", "staging_dir"):
            path = data.get(name)
            if path and system_path(path):
                self.add_error(name, f"{path} is a system directory (or holds one): {OWN_DIR}")
        files, staging = data.get("files_dir"), data.get("staging_dir")
        if files and staging and (within(files, staging) or within(staging, files)):
            self.add_error("staging_dir", "The two data directories must differ and not nest.")
        return data


class ExportsForm(DataDirsForm):
    clients = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The front-end hosts that may mount the directories (read-write), one per "
        "line or comma-separated: inventory host names (their service addresses are used) or "
        "IPv4 addresses. Nobody else gets any access. Empty: exported to no one yet (the "
        "server's own front end uses the directories directly).",
    )

    def exports_setting(self) -> list[str]:
        if self.host is not None:
            mine = self.host.services.filter(kind=ServiceKind.NFS_SERVER).first()
            if mine is not None:
                return list(mine.effective_settings.get("exports", []))
        return super().exports_setting()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["clients"].initial = "\n".join(self.proposed_clients())
        self.take_proposals()

    def proposed_clients(self) -> list[str]:
        """The inventory's other PHP front ends, by name."""
        frontends = Host.objects.filter(
            active=True, services__kind=ServiceKind.PHP_FRONTEND
        ).order_by("name")
        if self.host is not None:
            frontends = frontends.exclude(pk=self.host.pk)
        return [h.name for h in frontends]

    def clean_clients(self) -> list[str]:
        entries = [e for e in re.split(r"[,\n]", self.cleaned_data["clients"]) if e.strip()]
        errors, addresses = [], []
        for entry in entries:
            try:
                address = host_ipv4(entry, "a front-end host")
            except ValidationError as error:
                errors.extend(error.messages)
                continue
            if address not in addresses:
                addresses.append(address)
        if errors:
            raise ValidationError(errors)
        return addresses


class MountForm(DataDirsForm):
    server = forms.CharField(
        label="NFS server",
        max_length=253,
        help_text="The host that exports the directories: an inventory host name (its "
        "service address is used) or an IPv4 address.",
    )
    options = forms.CharField(
        max_length=200,
        initial=DEFAULT_OPTIONS,
        help_text="Mount options, comma-separated (fstab's fourth field).",
    )
    field_order = ["server", "files_dir", "staging_dir", "options"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        nfs = _nfs_service()
        if nfs is not None:
            self.fields["server"].initial = nfs.host.name
        self.take_proposals()

    def clean_server(self) -> str:
        address = host_ipv4(self.cleaned_data["server"], "an NFS server")
        if self.host is not None and address == _ipv4(self.host.reach_address):
            raise ValidationError(
                f"{self.host.name} is the NFS server itself: its front end uses the "
                "directories directly, without a mount."
            )
        return address

    def clean_options(self) -> str:
        options = [o.strip() for o in self.cleaned_data["options"].split(",") if o.strip()]
        bad = [o for o in options if not OPTION_RE.match(o)]
        if bad or not options:
            raise ValidationError(
                "Mount options are words such as rw, hard, noatime or vers=4.2, "
                f"comma-separated without spaces; not: {', '.join(bad) or 'nothing'}."
            )
        return ",".join(options)


# --- The server -------------------------------------------------------------------------------


def ganesha_config(p: dict[str, Any]) -> str:
    clients = ", ".join(p["clients"])
    lines = [
        "# Written by Remora Admin (nfs_exports); changes here are overwritten.",
        "NFS_CORE_PARAM {",
        "    Protocols = 3, 4;",
        "    NFS_Port = 2049;",
        "    Enable_RQUOTA = false;",
        "}",
        "NFSV4 {",
        "    Lease_Lifetime = 20;",
        "    Grace_Period = 20;      # after a restart; a reload keeps the clients' state",
        "}",
    ]
    for number, path in enumerate((p["files_dir"], p["staging_dir"]), start=1):
        lines += [
            "EXPORT {",
            f"    Export_Id = {number};",
            f'    Path = "{path}";',
            f'    Pseudo = "{path}";',
            "    Protocols = 3, 4;",
            "    Transports = TCP;",
            "    SecType = sys;",
            "    Squash = Root_Squash;   # root on a client writes as nobody",
            "    Anonymous_Uid = 65534;",
            "    Anonymous_Gid = 65534;",
            "    Access_Type = None;     # nobody, but the clients below",
            "    FSAL { Name = VFS; }",
        ]
        if clients:
            lines += [f"    CLIENT {{ Clients = {clients}; Access_Type = RW; }}"]
        lines += ["}"]
    return "\n".join(lines) + "\n"


def _server_header(p: dict[str, Any]) -> str:
    values = {
        "files_dir": p["files_dir"],
        "staging_dir": p["staging_dir"],
        "config": CONFIG,
        "want_config": ganesha_config(p),
        "clients_text": ", ".join(p["clients"]) or "no one yet",
    }
    lines = [f"{name}={q(value)}" for name, value in values.items()]
    lines.append(f"packages=({' '.join(q(name) for name in SERVER_PACKAGES)})")
    return "\n".join(lines) + "\n"


_SERVER_COMMON = r"""
export LC_ALL=C
umask 022
core_settings() { sed '/^EXPORT {/,$d'; }
listening() { ss -Hltn 'sport = :2049' | grep -q .; }
wait_listening() {
  for _ in $(seq 1 60); do listening && return 0; sleep 0.5; done
  echo "NFS-Ganesha is not listening on port 2049; its log:" >&2
  journalctl -u nfs-ganesha -n 20 --no-pager >&2 || true
  return 1
}
"""

_EXPORTS = r"""
changed=0
config_changed=0
ensure_installed "${packages[@]}"
for dir in "$files_dir" "$staging_dir"; do
  if [ ! -d "$dir" ]; then
    install -d -m 0755 -o www-data -g www-data "$dir"
    echo "$dir: created, owned by www-data"
    changed=1
  elif [ "$(stat -c %U:%G "$dir")" != www-data:www-data ]; then
    chown www-data:www-data "$dir"
    echo "$dir: now owned by www-data"
    changed=1
  fi
done
core_before=$(core_settings < "$config" 2>/dev/null || true)
if ! printf '%s' "$want_config" | cmp -s - "$config"; then
  install -d -m 0755 "$(dirname "$config")"
  printf '%s' "$want_config" > "$config.remora-new"
  chmod 0644 "$config.remora-new"
  mv -f "$config.remora-new" "$config"
  echo "$config: exports written for $clients_text"
  changed=1
  config_changed=1
fi
# A reload re-reads the exports only; the core settings (protocols, the port) need a restart,
# as after the package's first start with its own configuration.
how=reload
if [ "$config_changed" = 1 ] && [ "$(core_settings < "$config")" != "$core_before" ]; then
  how=restart
fi
ensure_running nfs-ganesha "$how" NFS-Ganesha
wait_listening
if [ "$changed" = 0 ]; then
  echo "already in place: $files_dir and $staging_dir exported read-write to $clients_text"
else
  echo "done: $files_dir and $staging_dir exported read-write to $clients_text"
fi
"""

_EXPORTS_STATUS = r"""
problems=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' \
    || problems+=("package $pkg not installed")
done
for dir in "$files_dir" "$staging_dir"; do
  if [ ! -d "$dir" ]; then
    problems+=("no directory $dir")
  elif [ "$(stat -c %U:%G "$dir")" != www-data:www-data ]; then
    problems+=("$dir is not owned by www-data")
  fi
done
printf '%s' "$want_config" | cmp -s - "$config" \
  || problems+=("$config does not export the directories to $clients_text")
systemctl is-active --quiet nfs-ganesha || problems+=("nfs-ganesha is not running")
listening || problems+=("nothing listens on port 2049")
if ((${#problems[@]})); then
  printf 'missing: %s\n' "${problems[@]}"
  exit 3
fi
echo "nfs_exports in place: $files_dir and $staging_dir exported read-write to $clients_text"
"""


def _exports(p: dict[str, Any]) -> str:
    return _server_header(p) + APT_GET + ENSURE + _SERVER_COMMON + _EXPORTS


def _exports_status(p: dict[str, Any]) -> str:
    return _server_header(p) + _SERVER_COMMON + _EXPORTS_STATUS


# --- The front end's mounts -------------------------------------------------------------------


def _mount_header(p: dict[str, Any]) -> str:
    values = {"server": p["server"], "options": p["options"]}
    lines = [f"{name}={q(value)}" for name, value in values.items()]
    lines.append(f"dirs=({q(p['files_dir'])} {q(p['staging_dir'])})")
    return "\n".join(lines) + "\n" + _MOUNT_COMMON


_MOUNT_COMMON = r"""
export LC_ALL=C
umask 022
fstab_line() { printf '%s:%s %s nfs %s 0 0' "$server" "$1" "$1" "$options"; }
mounted_from() { findmnt -n -o SOURCE --mountpoint "$1" 2>/dev/null | head -n 1; }
writable() {
  # shellcheck disable=SC2016 # expanded by the inner shell, as www-data
  runuser -u www-data -- sh -c 'f="$1/.remora-check.$$" && : > "$f" && rm -f "$f"' _ "$1" \
    2>/dev/null
}
"""

_MOUNT = r"""
changed=0
ensure_installed nfs-common
for dir in "${dirs[@]}"; do
  line=$(fstab_line "$dir")
  if ! grep -qxF -- "$line" /etc/fstab; then
    # Replace whatever mounted this path before; keep every other line as it is.
    awk -v dir="$dir" '$1 ~ /^#/ || $2 != dir' /etc/fstab > /etc/fstab.remora-new
    printf '%s\n' "$line" >> /etc/fstab.remora-new
    chmod 0644 /etc/fstab.remora-new
    mv -f /etc/fstab.remora-new /etc/fstab
    systemctl daemon-reload
    echo "/etc/fstab: $line"
    changed=1
  fi
  source="$server:$dir"
  if mountpoint -q "$dir"; then
    now=$(mounted_from "$dir")
    if [ "$now" != "$source" ]; then
      echo "$dir is mounted from $now, not $source: unmount it first (umount $dir)" >&2
      exit 1
    fi
  else
    [ -d "$dir" ] || { install -d -m 0755 "$dir"; changed=1; }
    if [ -n "$(find "$dir" -mindepth 1 -maxdepth 1 -print -quit)" ]; then
      count=$(find "$dir" -mindepth 1 -maxdepth 1 | wc -l)
      echo "$dir holds $count entries of its own that the mount would hide:" \
        "move them to $source first" >&2
      exit 1
    fi
    unit=$(systemd-escape -p --suffix=mount "$dir")
    if ! systemctl start "$unit"; then
      echo "cannot mount $source on $dir:" >&2
      journalctl -u "$unit" -n 10 --no-pager >&2 || true
      exit 1
    fi
    echo "$dir: mounted from $source"
    changed=1
  fi
  if ! writable "$dir"; then
    echo "$dir is mounted but www-data cannot write there: check that $server exports it" \
      "to this host read-write and that the directory belongs to www-data there" >&2
    exit 1
  fi
done
if [ "$changed" = 0 ]; then
  echo "already in place: ${dirs[*]} mounted from $server, writable by www-data"
else
  echo "done: ${dirs[*]} mounted from $server, writable by www-data"
fi
"""

_MOUNT_STATUS = r"""
problems=()
for dir in "${dirs[@]}"; do
  grep -qxF -- "$(fstab_line "$dir")" /etc/fstab || problems+=("no /etc/fstab entry for $dir")
  if ! mountpoint -q "$dir"; then
    problems+=("$dir is not mounted")
  elif [ "$(mounted_from "$dir")" != "$server:$dir" ]; then
    problems+=("$dir is mounted from $(mounted_from "$dir"), not $server:$dir")
  elif ! writable "$dir"; then
    problems+=("$dir is not writable by www-data")
  fi
done
if ((${#problems[@]})); then
  printf 'missing: %s\n' "${problems[@]}"
  exit 3
fi
echo "nfs_mount in place: ${dirs[*]} mounted from $server, writable by www-data"
"""


def _mount(p: dict[str, Any]) -> str:
    return _mount_header(p) + APT_GET + ENSURE + _MOUNT


def _mount_status(p: dict[str, Any]) -> str:
    return _mount_header(p) + _MOUNT_STATUS


RECIPES: list[Recipe] = [
    Recipe(
        name="nfs_exports",
        title="Export the data directories over NFS",
        description="NFS-Ganesha from Debian (user space: it runs the same on a real server "
        "and in the lab, whose kernel has no NFS server), NFSv4 and v3 on port 2049; the two "
        "data-file directories, owned by www-data, exported read-write to the named front "
        "ends only (root squashed) and to nobody else; exports re-read with a reload.",
        category=Category.PROVISION,
        form=ExportsForm,
        script=_exports,
        timeout=900,
        changes_host=True,
        service_kinds=(ServiceKind.NFS_SERVER,),
        as_root=True,
        status=_exports_status,
    ),
    Recipe(
        name="nfs_mount",
        title="Mount the data directories from the NFS server",
        description="Debian's NFS client; an /etc/fstab entry per data directory at the same "
        "path as on the server, mounted through systemd (back at boot), checked writable by "
        "www-data. Refuses to hide files already in a directory.",
        category=Category.PROVISION,
        form=MountForm,
        script=_mount,
        timeout=600,
        changes_host=True,
        service_kinds=(ServiceKind.PHP_FRONTEND,),
        as_root=True,
        status=_mount_status,
    ),
]
