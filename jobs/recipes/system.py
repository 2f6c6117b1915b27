"""The first recipes: host health, service status/restart/reload, a log tail, MySQL ping, and
the superadmins' ad-hoc command."""

from django import forms
from django.core.validators import RegexValidator

from hosts.models import ServiceKind
from remora_admin.access.policy import Action

from ..ssh import quote as q
from .base import Category, Recipe, RecipeForm

# The systemd unit of each service kind on a Debian host.
UNITS = {
    ServiceKind.MYSQL_MASTER: "mariadb",
    ServiceKind.MYSQL_REPLICA: "mariadb",
    ServiceKind.NFS_SERVER: "nfs-ganesha",
    ServiceKind.PHP_FRONTEND: "apache2",
    ServiceKind.PERLBAL: "perlbal",
    ServiceKind.HEARTBEAT: "keepalived",
}

LOG_FILES = {
    "syslog": "/var/log/syslog",
    "mysql": "/var/log/mysql/error.log",
    "apache-error": "/var/log/apache2/error.log",
    "apache-access": "/var/log/apache2/access.log",
    "perlbal": "/var/log/perlbal.log",
    "heartbeat": "/var/log/ha-log",
}


RECIPES: list[Recipe] = []  # this module's recipes, in the order the launch page lists them


class NoParams(RecipeForm):
    pass


def _health(p: dict) -> str:
    return """
echo "== $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "== uptime and load"
uptime
echo "== disk"
df -h -x tmpfs -x devtmpfs
echo "== memory"
free -m
"""


RECIPES.append(
    Recipe(
        name="host_health",
        title="Host health",
        description="Uptime, load, disk and memory.",
        category=Category.CHECK,
        form=NoParams,
        script=_health,
        timeout=60,
    )
)


class ServiceForm(RecipeForm):
    service = forms.ChoiceField(choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kinds = sorted({s.kind for s in self.host.services.all()}) if self.host else []
        self.fields["service"].choices = [
            (k, f"{ServiceKind(k).label} ({UNITS[k]})") for k in kinds
        ] or [(k, ServiceKind(k).label) for k in UNITS]


def _systemctl(verb: str):
    def script(p: dict) -> str:
        unit = UNITS[p["service"]]
        extra = " --no-pager --lines=20" if verb == "status" else ""
        return f"systemctl {verb}{extra} -- {q(unit)}"

    return script


for verb, title, category, changes in [
    ("status", "Service status", Category.CHECK, False),
    ("restart", "Restart a service", Category.OPERATE, True),
    ("reload", "Reload a service", Category.OPERATE, True),
]:
    RECIPES.append(
        Recipe(
            name=f"service_{verb}",
            title=title,
            description=f"systemctl {verb} of one of the host's services.",
            category=category,
            form=ServiceForm,
            script=_systemctl(verb),
            timeout=120,
            changes_host=changes,
            service_kinds=tuple(UNITS),
        )
    )


class TailForm(RecipeForm):
    log = forms.ChoiceField(choices=[(k, v) for k, v in LOG_FILES.items()])
    lines = forms.IntegerField(min_value=1, max_value=5000, initial=100)
    grep = forms.CharField(
        required=False,
        max_length=100,
        help_text="Only lines containing this text (plain text, not a pattern).",
    )


def _tail(p: dict) -> str:
    path = LOG_FILES[p["log"]]
    script = f"tail -n {int(p['lines'])} -- {q(path)}"
    if p.get("grep"):
        script += f" | grep -F -- {q(p['grep'])} || true"
    return script


RECIPES.append(
    Recipe(
        name="tail_log",
        title="Tail a log file",
        description="The last lines of one of the allow-listed log files.",
        category=Category.CHECK,
        form=TailForm,
        script=_tail,
        timeout=60,
    )
)


class MysqlPingForm(RecipeForm):
    user = forms.CharField(
        max_length=32,
        initial="remora",
        validators=[RegexValidator(r"^[A-Za-z0-9_]+$", "Letters, digits and underscores only.")],
    )
    password = forms.CharField(max_length=200, widget=forms.PasswordInput(render_value=False))


def _mysql_ping(p: dict) -> str:
    # p["password"] is the environment variable reference, never the value.
    return f"MYSQL_PWD={p['password']} mysqladmin --user={q(p['user'])} ping"


RECIPES.append(
    Recipe(
        name="mysql_ping",
        title="MySQL ping",
        description="Check that the MySQL server answers, logging in as a database user.",
        category=Category.CHECK,
        form=MysqlPingForm,
        script=_mysql_ping,
        timeout=30,
        service_kinds=(ServiceKind.MYSQL_MASTER, ServiceKind.MYSQL_REPLICA),
        secret_fields=("password",),
    )
)


class AdhocForm(RecipeForm):
    command = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        max_length=8000,
        help_text="Runs as written under bash. Recorded in full in the audit log.",
    )
    changes_host = forms.BooleanField(
        required=False, initial=True, help_text="Take the host lock (one change at a time)."
    )


RECIPES.append(
    Recipe(
        name="adhoc",
        title="Ad-hoc command",
        description="Any command, for superadmins only.",
        category=Category.OPERATE,
        form=AdhocForm,
        script=lambda p: p["command"],
        timeout=600,
        action=Action.RUN_ADHOC,  # takes the host lock when its form says so
    )
)
