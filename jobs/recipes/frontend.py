"""The PHP front end: Apache and PHP, the application from git, its database and
data-directory settings.

`php_frontend` installs Apache 2.4 with mod_php 8.2 (Debian's packages), deploys the
application from a git URL and ref into `<deploy root>/releases/<commit>` (a clean export, no
`.git`) and switches `<deploy root>/current` to it atomically (a symlink renamed over the old
one); writes the database configuration, a PHP file outside the web root readable by Apache only
(mode 0640 root:www-data), with writes to the master (`DB_*`) and reads to the shadow database
(`SHADOW_DB_*`, Remora's naming) and the two data-file directories (`REPO_PATH`,
`PUBLIC_STAGING_PATH`); the site's vhost on the front end's port (Apache listens there only:
port 80 stays free for Perlbal); reloads Apache only when something changed, then checks the
site over HTTP. A second run with the same commit and settings changes nothing.
"""

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from hosts.models import Host, Service, ServiceKind, address_validator

from ..ssh import quote as q
from .base import Category, Recipe, RecipeForm
from .paths import OWN_DIR, absolute_path, system_path, within
from .shell import APT_GET

PACKAGES = ("apache2", "libapache2-mod-php", "php-mysql", "git", "curl", "ca-certificates")
CONFIG_PATH = "/etc/remora/config.php"
SITE = "remora"  # /etc/apache2/sites-available/remora.conf
KEEP_RELEASES = 3  # older releases than these (and the current one) are removed

GIT_URL = re.compile(
    r"^(https?|git)://"
    r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})"  # host name or IPv4 address
    r"(:[0-9]{1,5})?"
    r"(/[A-Za-z0-9._~/+-]*)?$"
)

name_only = RegexValidator(r"^[A-Za-z0-9_]+$", "Letters, digits and underscores only.")


def _git_url(value: str) -> None:
    if not value.startswith(("http://", "https://", "git://")):
        raise ValidationError("Use an http://, https:// or git:// URL.")
    if not GIT_URL.match(value):
        raise ValidationError(
            "The URL may hold only a host name, a port and a path of letters, digits and "
            ". _ ~ / + - (no spaces, no user name, no shell characters)."
        )


def _git_ref(value: str) -> None:
    """A branch, tag or commit name as git itself accepts it, and nothing a shell could read."""
    if re.search(r"\s", value):
        raise ValidationError("A git ref has no spaces.")
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", value):
        raise ValidationError("A git ref holds only letters, digits and . _ / -.")
    if (
        value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "/." in value
    ):
        raise ValidationError(f"{value!r} is not a valid git ref name.")


def _relative_path(value: str) -> None:
    if value and (
        not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", value)
        or any(part in (".", "..") for part in value.split("/"))
    ):
        raise ValidationError("A path inside the application: letters, digits and . _ - only.")


def _url_path(value: str) -> None:
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value):
        raise ValidationError("A path on the site, starting with / (letters, digits, . _ ~ - /).")


def _service(kind: str) -> Service | None:
    return (
        Service.objects.filter(kind=kind, host__active=True)
        .select_related("host")
        .order_by("host__name")
        .first()
    )


class FrontendForm(RecipeForm):
    repo_url = forms.CharField(
        label="Git URL",
        max_length=300,
        validators=[_git_url],
        help_text="Where the application comes from (http, https or git).",
    )
    ref = forms.CharField(
        label="Git ref",
        max_length=100,
        initial="main",
        validators=[_git_ref],
        help_text="The branch, tag or commit to deploy.",
    )
    deploy_root = forms.CharField(
        max_length=200,
        initial="/srv/remora",
        validators=[absolute_path],
        help_text="Releases go to releases/<commit> here; current points at the live one.",
    )
    web_dir = forms.CharField(
        required=False,
        max_length=200,
        validators=[_relative_path],
        help_text="The web root inside the application (empty: its top).",
    )
    server_name = forms.CharField(max_length=253, validators=[address_validator])
    port = forms.IntegerField(min_value=1, max_value=65535, initial=8080)
    health_path = forms.CharField(max_length=200, initial="/", validators=[_url_path])
    db_host = forms.CharField(
        label="Master database host", max_length=253, validators=[address_validator]
    )
    db_port = forms.IntegerField(min_value=1, max_value=65535, initial=3306)
    db_name = forms.CharField(max_length=64, initial="remora", validators=[name_only])
    db_user = forms.CharField(max_length=80, initial="remora", validators=[name_only])
    db_password = forms.CharField(max_length=200, widget=forms.PasswordInput(render_value=False))
    shadow_db_host = forms.CharField(
        label="Shadow database host",
        max_length=253,
        validators=[address_validator],
        help_text="The read-only replica that serves the application's reads (the master "
        "itself until there is one).",
    )
    shadow_db_port = forms.IntegerField(min_value=1, max_value=65535, initial=3306)
    shadow_db_name = forms.CharField(max_length=64, initial="remora", validators=[name_only])
    shadow_db_user = forms.CharField(max_length=80, initial="remora", validators=[name_only])
    shadow_db_password = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Empty: the master's password.",
    )
    files_dir = forms.CharField(
        label="Files directory (REPO_PATH)",
        max_length=200,
        initial="/srv/remora/files",
        validators=[absolute_path],
    )
    staging_dir = forms.CharField(
        label="Public staging directory (PUBLIC_STAGING_PATH)",
        max_length=200,
        initial="/srv/remora/public-staging",
        validators=[absolute_path],
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        proposed = self.proposals()
        for name, value in proposed.items():
            self.fields[name].initial = value
        self.take_proposals()

    def proposals(self) -> dict[str, Any]:
        """Defaults from the inventory: this host's front-end settings, the master's and the
        shadow's service addresses and settings, the NFS server's exported directories."""
        out: dict[str, Any] = {}
        host: Host | None = self.host
        if host is not None:
            out["server_name"] = host.name
            mine = host.services.filter(kind=ServiceKind.PHP_FRONTEND).first()
            if mine is not None:
                out["port"] = mine.effective_settings.get("port", 8080)
        master = _service(ServiceKind.MYSQL_MASTER)
        if master is not None:
            s = master.effective_settings
            out.update(db_host=master.host.reach_address, db_port=s.get("port", 3306))
            out["db_name"] = s.get("database", "remora")
        shadow = _service(ServiceKind.MYSQL_REPLICA) or master
        if shadow is not None:
            s = shadow.effective_settings
            out.update(shadow_db_host=shadow.host.reach_address, shadow_db_port=s.get("port"))
            out["shadow_db_name"] = s.get("database", "remora")
        nfs = _service(ServiceKind.NFS_SERVER)
        exports = list(nfs.effective_settings.get("exports", [])) if nfs else []
        if len(exports) >= 2:
            out.update(files_dir=exports[0], staging_dir=exports[1])
        return {k: v for k, v in out.items() if v not in (None, "")}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        root = data.get("deploy_root")
        for name in ("deploy_root", "files_dir", "staging_dir"):
            path = data.get(name)
            if path and system_path(path):
                self.add_error(name, f"{path} is a system directory (or holds one): {OWN_DIR}")
        for name in ("files_dir", "staging_dir"):
            path = data.get(name)
            if not root or not path or system_path(path):
                continue
            inside = any(within(path, f"{root}/{part}") for part in ("releases", "current"))
            if inside or within(f"{root}/releases", path) or within(root, path):
                self.add_error(
                    name, "A data directory cannot hold or be the deploy root or a release."
                )
        if data.get("files_dir") and data.get("files_dir") == data.get("staging_dir"):
            self.add_error("staging_dir", "The two data directories must differ.")
        return data


# --- The scripts ------------------------------------------------------------------------------
# Every value enters a script once, quoted, as a bash variable in the header; the bodies are
# constant text that use the variables. The passwords never enter the text: the deploy script
# reads them from the environment the worker sets (REMORA_SECRET_*); the status script has none.


def _docroot(p: dict[str, Any]) -> str:
    web_dir = (p.get("web_dir") or "").strip("/")
    return f"{p['deploy_root']}/current" + (f"/{web_dir}" if web_dir else "")


def _vhost(p: dict[str, Any]) -> str:
    root = p["deploy_root"]
    directory = [
        "        Options -Indexes +FollowSymLinks",
        "        AllowOverride None",
        "        Require all granted",
        "        DirectoryIndex index.php index.html",
        "    </Directory>",
    ]
    return "\n".join(
        [
            "# Written by Remora Admin (php_frontend); changes here are overwritten.",
            f"<VirtualHost *:{int(p['port'])}>",
            f"    ServerName {p['server_name']}",
            f'    DocumentRoot "{_docroot(p)}"',
            f"    SetEnv REMORA_CONFIG {CONFIG_PATH}",
            f'    <Directory "{root}/current">',
            *directory,
            f'    <Directory "{root}/releases">',
            *directory,
            "    ErrorLog ${APACHE_LOG_DIR}/remora-error.log",
            "    CustomLog ${APACHE_LOG_DIR}/remora-access.log combined",
            "</VirtualHost>",
            "",
        ]
    )


def _ports(p: dict[str, Any]) -> str:
    return (
        "# Written by Remora Admin (php_frontend): Apache listens on the front end's port only\n"
        "# (port 80 stays free for Perlbal).\n"
        f"Listen {int(p['port'])}\n"
    )


def _header(p: dict[str, Any]) -> str:
    values = {
        "repo_url": p["repo_url"],
        "ref": p["ref"],
        "deploy_root": p["deploy_root"],
        "web_dir": (p.get("web_dir") or "").strip("/"),
        "port": int(p["port"]),
        "health_path": p["health_path"],
        "db_host": p["db_host"],
        "db_port": int(p["db_port"]),
        "db_name": p["db_name"],
        "db_user": p["db_user"],
        "shadow_db_host": p["shadow_db_host"],
        "shadow_db_port": int(p["shadow_db_port"]),
        "shadow_db_name": p["shadow_db_name"],
        "shadow_db_user": p["shadow_db_user"],
        "files_dir": p["files_dir"],
        "staging_dir": p["staging_dir"],
        "config": CONFIG_PATH,
        "site": SITE,
        "vhost": _vhost(p),
        "ports_conf": _ports(p),
        "server_name_conf": f"# Written by Remora Admin.\nServerName {p['server_name']}\n",
    }
    lines = [f"{name}={q(value)}" for name, value in values.items()]
    # The vhost holds Apache's own ${APACHE_LOG_DIR}, for Apache to expand, not bash.
    lines.insert(list(values).index("vhost"), "# shellcheck disable=SC2016")
    lines.append(f"packages=({' '.join(q(name) for name in PACKAGES)})")
    return "\n".join(lines) + "\n" + APT_GET + _COMMON


_COMMON = r"""
umask 022
export LC_ALL=C
releases="$deploy_root/releases"
site_file="/etc/apache2/sites-available/$site.conf"
name_file="/etc/apache2/conf-available/$site-servername.conf"
url="http://localhost:$port$health_path"

php_str() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
php_define() { printf "define('%s', %s);\n" "$1" "$(php_str "$2")"; }
php_int() { printf "define('%s', %d);\n" "$1" "$2"; }
public_defines() {
    php_define DB_HOST "$db_host"
    php_int DB_PORT "$db_port"
    php_define DB_NAME "$db_name"
    php_define DB_USER "$db_user"
    php_define SHADOW_DB_HOST "$shadow_db_host"
    php_int SHADOW_DB_PORT "$shadow_db_port"
    php_define SHADOW_DB_NAME "$shadow_db_name"
    php_define SHADOW_DB_USER "$shadow_db_user"
    php_define REPO_PATH "$files_dir"
    php_define PUBLIC_STAGING_PATH "$staging_dir"
}
missing_packages() {
    local pkg
    for pkg in "${packages[@]}"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -qx 'install ok installed' \
            || printf '%s\n' "$pkg"
    done
}
apt_install() { apt_get install -y -q --no-install-recommends "$@"; }
http_code() {
    curl -s -o "$1" -w '%{http_code}' --max-time 10 "$url" || true
}
"""

_DEPLOY = r"""
changed=()
note() { changed+=("$1"); printf '%s: %s\n' "$1" "$2"; }
same() { printf '%s: already in place\n' "$1"; }
: "${REMORA_SECRET_DB_PASSWORD:?the master database password is missing}"

# Debian's packages.
mapfile -t absent < <(missing_packages)
if ((${#absent[@]})); then
    echo "installing ${absent[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_get update -qq >/dev/null
    apt_install "${packages[@]}"
    note packages "installed ${absent[*]}"
else
    same "packages (${packages[*]})"
fi

# The data-file directories, Apache's to write.
for dir in "$files_dir" "$staging_dir"; do
    if [ ! -d "$dir" ]; then
        install -d -m 0755 -o www-data -g www-data "$dir"
        note "$dir" "created, owned by www-data"
    elif [ "$(stat -c %U:%G "$dir")" != www-data:www-data ]; then
        chown www-data:www-data "$dir"
        note "$dir" "now owned by www-data"
    else
        same "$dir"
    fi
done

# The release: the ref's commit, exported (no .git) into releases/<commit>.
install -d -m 0755 "$deploy_root" "$releases"
cache="$deploy_root/.git-cache"
[ -d "$cache/objects" ] || git init -q --bare "$cache"
if ! git -C "$cache" fetch -q --no-tags --force "$repo_url" "$ref"; then
    echo "cannot fetch $ref from $repo_url" >&2
    exit 1
fi
commit=$(git -C "$cache" rev-parse --verify 'FETCH_HEAD^{commit}')
release="$releases/$commit"
if [ ! -d "$release" ]; then
    incoming=$(mktemp -d "$releases/.incoming.XXXXXX")
    git -C "$cache" archive --format=tar "$commit" | tar -x -C "$incoming"
    chmod 0755 "$incoming"
    mv -T "$incoming" "$release"
    echo "release $commit unpacked"
fi
if [ -n "$web_dir" ] && [ ! -d "$release/$web_dir" ]; then
    echo "the application at $commit has no $web_dir directory" >&2
    exit 1
fi
previous=$(readlink "$deploy_root/current" || true)
if [ "$previous" = "$release" ]; then
    same "current ($commit, $ref)"
else
    # Atomic: a new symlink renamed over the old one; no request sees a missing root.
    ln -sfn "$release" "$deploy_root/.current.new"
    mv -T "$deploy_root/.current.new" "$deploy_root/current"
    note current "switched to $commit ($ref), was ${previous:-nothing}"
    find "$releases" -mindepth 1 -maxdepth 1 -name '.incoming.*' -exec rm -rf {} +
    find "$releases" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %p\n' \
        | sort -rn | tail -n +$((keep + 1)) | cut -d' ' -f2- \
        | while IFS= read -r old; do
            if [ "$old" != "$release" ]; then
                rm -rf -- "$old" && echo "removed the old release $old"
            fi
        done
fi

# The configuration, outside the web root: writes to the master, reads to the shadow.
install -d -m 0750 -o root -g www-data "$(dirname "$config")"
new=$(mktemp)
trap 'rm -f "$new"' EXIT
{
    echo '<?php'
    echo '// Written by Remora Admin (php_frontend); changes here are overwritten.'
    echo '// Writes go to the master (DB_*), reads to the shadow database (SHADOW_DB_*).'
    public_defines
    php_define DB_PASS "$REMORA_SECRET_DB_PASSWORD"
    php_define SHADOW_DB_PASS "${REMORA_SECRET_SHADOW_DB_PASSWORD:-$REMORA_SECRET_DB_PASSWORD}"
} >"$new"
if [ -f "$config" ] && cmp -s "$new" "$config" \
    && [ "$(stat -c %a:%U:%G "$config")" = 640:root:www-data ]; then
    same "$config"
else
    install -m 0640 -o root -g www-data "$new" "$config.new"
    mv -f "$config.new" "$config"
    note "$config" "written (mode 0640 root:www-data)"
fi

# Apache: its port, the site, nothing else served.
write_if_changed() { # path content
    if [ -f "$1" ] && [ "$(cat "$1")" = "${2%$'\n'}" ]; then
        same "$1"
    else
        printf '%s' "$2" >"$1.new"
        mv -f "$1.new" "$1"
        note "$1" written
    fi
}
write_if_changed /etc/apache2/ports.conf "$ports_conf"
write_if_changed "$site_file" "$vhost"
write_if_changed "$name_file" "$server_name_conf"
if [ ! -e "/etc/apache2/conf-enabled/$site-servername.conf" ]; then
    a2enconf -q "$site-servername" >/dev/null
    note "conf $site-servername" enabled
fi
if [ ! -e "/etc/apache2/sites-enabled/$site.conf" ]; then
    a2ensite -q "$site" >/dev/null
    note "site $site" enabled
fi
if [ -e /etc/apache2/sites-enabled/000-default.conf ]; then
    a2dissite -q 000-default >/dev/null
    note "site 000-default" disabled
fi
checked=$(mktemp)
if ! apache2ctl configtest 2>"$checked"; then
    cat "$checked" >&2
    echo "Apache refuses the new configuration; the running one is unchanged" >&2
    exit 1
fi
rm -f "$checked"
if ! systemctl is-enabled -q apache2; then systemctl enable -q apache2; fi
if ! systemctl is-active -q apache2; then
    systemctl start apache2
    note apache2 started
elif ((${#changed[@]})); then
    systemctl reload apache2
    echo "apache2 reloaded"
fi

# Health, through HTTP as the site's visitors see it.
body=$(mktemp)
code=000
for _ in $(seq 1 40); do
    code=$(http_code "$body")
    [ "$code" = 200 ] && break
    sleep 0.25
done
if [ "$code" != 200 ]; then
    echo "the site answered HTTP $code at $url:" >&2
    head -c 2000 "$body" >&2
    rm -f "$body"
    exit 1
fi
rm -f "$body"
echo "HTTP 200 from $url"
if ((${#changed[@]})); then
    echo "php_frontend: $commit ($ref) deployed; changed: ${changed[*]}"
else
    echo "php_frontend: already in place ($commit, $ref); nothing changed"
fi
"""

_STATUS = r"""
problems=()
mapfile -t absent < <(missing_packages)
if ((${#absent[@]})); then
    echo "missing: packages ${absent[*]} are not installed"
    exit 3
fi
systemctl is-active -q apache2 || problems+=("apache2 is not running")
[ -e "/etc/apache2/sites-enabled/$site.conf" ] || problems+=("the site $site is not enabled")
if ! [ -f "$site_file" ] || [ "$(cat "$site_file")" != "${vhost%$'\n'}" ]; then
    problems+=("the vhost $site_file differs from the expected one")
fi
if [ "$(cat /etc/apache2/ports.conf)" != "${ports_conf%$'\n'}" ]; then
    problems+=("Apache does not listen on port $port only")
fi
if ! [ -e "/etc/apache2/conf-enabled/$site-servername.conf" ] \
    || [ "$(cat "$name_file")" != "${server_name_conf%$'\n'}" ]; then
    problems+=("Apache's global ServerName is not set")
fi
if [[ $ref =~ ^[0-9a-f]{40}$ ]]; then
    want=$ref
else
    if ! refs=$(git ls-remote "$repo_url"); then
        echo "cannot list the refs of $repo_url" >&2
        exit 2
    fi
    want=""
    for name in "refs/tags/$ref^{}" "refs/tags/$ref" "refs/heads/$ref" "$ref"; do
        want=$(awk -v n="$name" '$2 == n { print $1; exit }' <<<"$refs")
        [ -n "$want" ] && break
    done
    if [ -z "$want" ]; then
        echo "$repo_url has no ref $ref" >&2
        exit 2
    fi
fi
deployed=$(readlink "$deploy_root/current" || true)
if [ "$deployed" != "$releases/$want" ] || [ ! -d "$releases/$want" ]; then
    problems+=("$ref is $want; deployed: ${deployed:-nothing}")
fi
if [ ! -f "$config" ]; then
    problems+=("no configuration at $config")
else
    [ "$(stat -c %a:%U:%G "$config")" = 640:root:www-data ] \
        || problems+=("$config is not mode 0640 root:www-data")
    while IFS= read -r line; do
        grep -Fqx -- "$line" "$config" || problems+=("$config lacks: $line")
    done < <(public_defines)
fi
for dir in "$files_dir" "$staging_dir"; do
    if [ ! -d "$dir" ]; then
        problems+=("no data directory $dir")
    elif [ "$(stat -c %U:%G "$dir")" != www-data:www-data ]; then
        problems+=("$dir is not owned by www-data")
    fi
done
[ -d "$deploy_root/current/$web_dir" ] || problems+=("no web root $deploy_root/current/$web_dir")
code=$(http_code /dev/null)
[ "$code" = 200 ] || problems+=("HTTP $code from $url")
if ((${#problems[@]})); then
    printf 'missing: %s\n' "${problems[@]}"
    exit 3
fi
echo "php_frontend in place: $want ($ref) at $deploy_root/current, HTTP 200 from $url"
"""


def _deploy(p: dict[str, Any]) -> str:
    return _header(p) + f"keep={q(KEEP_RELEASES)}\n" + _DEPLOY


def _status(p: dict[str, Any]) -> str:
    return _header(p) + _STATUS


RECIPES: list[Recipe] = [
    Recipe(
        name="php_frontend",
        title="Provision the PHP front end",
        description="Apache 2.4 and PHP 8.2 from Debian; the application from a git URL and "
        "ref, switched in atomically; its configuration with writes to the master and reads "
        "to the shadow database, and the two data-file directories; the site's vhost; "
        "Apache reloaded only on a change; checked over HTTP.",
        category=Category.PROVISION,
        form=FrontendForm,
        script=_deploy,
        timeout=900,
        changes_host=True,
        service_kinds=(ServiceKind.PHP_FRONTEND,),
        secret_fields=("db_password", "shadow_db_password"),
        as_root=True,
        status=_status,
    )
]
