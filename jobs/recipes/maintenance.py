"""Maintenance: security upgrades with a reboot-required report, disk usage against a threshold.

`security_upgrades` refreshes the package lists, then upgrades only the packages whose new
version comes from Debian's security archive (`bookworm-security`, label Debian-Security), as
`apt-get` itself reports them: no point-release or backport upgrade slips in with them. It says
what it upgraded and whether the host now needs a reboot (`/var/run/reboot-required`, which
Debian's kernel and libc packages create). `disk_usage` compares every mounted filesystem
(pseudo and memory filesystems left out) against a threshold in percent, of blocks and of
inodes, and fails naming the ones over it.
"""

from django import forms

from ..ssh import quote as q
from .base import Category, Recipe, RecipeForm
from .shell import APT_GET

RECIPES: list[Recipe] = []

# Filesystems with nothing on a disk: never counted.
PSEUDO_FS = ("tmpfs", "devtmpfs", "squashfs", "efivarfs", "ramfs")


class NoParams(RecipeForm):
    pass


def _security_upgrades(p: dict) -> str:
    return (
        APT_GET
        + """
export DEBIAN_FRONTEND=noninteractive
echo "== refreshing the package lists"
apt_get update -q
# apt-get's simulation names each upgrade's source: "Inst pkg [old] (new Debian-Security:...)".
plan=$(apt-get -s -o Debug::NoLocking=1 dist-upgrade)
mapfile -t security < <(printf '%s\\n' "$plan" \\
  | awk '/^Inst / && /Debian-Security|-security/ {print $2}' | sort -u)
others=$(printf '%s\\n' "$plan" \\
  | awk '/^Inst / && !/Debian-Security|-security/ {print $2}' | sort -u | wc -l)
if [ "${#security[@]}" = 0 ]; then
  echo "== no security update is pending: already in place"
else
  echo "== upgrading security updates: ${security[*]}"
  before=$(dpkg-query -W -f='${Package} ${Version}\\n' "${security[@]}")
  apt_get install -y -q --only-upgrade \\
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${security[@]}"
  echo "== upgraded"
  while read -r name old; do
    new=$(dpkg-query -W -f='${Version}' "$name")
    echo "  $name $old -> $new"
  done <<<"$before"
fi
echo "== other pending upgrades (not security, left alone): $others"
if [ -f /var/run/reboot-required ]; then
  echo "reboot required: yes"
  if [ -f /var/run/reboot-required.pkgs ]; then
    echo "  because of: $(sort -u /var/run/reboot-required.pkgs | xargs)"
  fi
else
  echo "reboot required: no"
fi
"""
    )


RECIPES.append(
    Recipe(
        name="security_upgrades",
        title="Security upgrades",
        description="Refresh the package lists and install only the pending Debian security "
        "updates; report what was upgraded and whether a reboot is required.",
        category=Category.MAINTENANCE,
        form=NoParams,
        script=_security_upgrades,
        timeout=1800,
        changes_host=True,
        as_root=True,
    )
)


class DiskUsageForm(RecipeForm):
    threshold = forms.IntegerField(
        min_value=1,
        max_value=99,
        initial=90,
        help_text="Fail when a filesystem is used above this percentage (1-99), of its blocks "
        "or of its inodes.",
        error_messages={
            "min_value": "The threshold is a percentage from 1 to 99.",
            "max_value": "The threshold is a percentage from 1 to 99.",
        },
    )


def _disk_usage(p: dict) -> str:
    threshold = int(p["threshold"])
    excluded = " ".join(f"-x {q(fs)}" for fs in PSEUDO_FS)
    return f"""
threshold={q(threshold)}
over=()
columns=target,pcent,ipcent,size,avail
report=$(df -l {excluded} --output="$columns" | tail -n +2)
echo "threshold: $threshold%"
echo "mount used inodes size avail"
while read -r mount used inodes size avail; do
  used=${{used%\\%}}
  inodes=${{inodes%\\%}}
  [ "$used" = - ] && used=0
  [ "$inodes" = - ] && inodes=0
  printf '%s %s%% %s%% %s %s\\n' "$mount" "$used" "$inodes" "$size" "$avail"
  if [ "$used" -gt "$threshold" ]; then
    over+=("$mount: $used% of its space used")
  fi
  if [ "$inodes" -gt "$threshold" ]; then
    over+=("$mount: $inodes% of its inodes used")
  fi
done < <(printf '%s\\n' "$report" | sort -u -k1,1)
if [ "${{#over[@]}}" -gt 0 ]; then
  echo "over $threshold%:"
  printf '  %s\\n' "${{over[@]}}"
  exit 1
fi
echo "every filesystem is at or under $threshold%"
"""


RECIPES.append(
    Recipe(
        name="disk_usage",
        title="Disk usage",
        description="Every mounted filesystem's space and inode use against a threshold; "
        "fails naming the filesystems over it.",
        category=Category.CHECK,
        form=DiskUsageForm,
        script=_disk_usage,
        timeout=60,
    )
)
