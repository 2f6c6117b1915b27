"""Lay out a growth phase's services as a picture: one column per host, arrows for what
depends on what (web traffic, database writes and reads, data files, replication, the failover
watch), each service coloured by its last known state.

The layout is computed here and drawn by `templates/hosts/topology.svg.html`, so the page needs
no script to show it.
"""

from dataclasses import dataclass, field

from .models import DEFAULT_SETTINGS, GrowthPhase, Host, Service, ServiceKind

COL_WIDTH, COL_GAP, BOX_HEIGHT, BOX_GAP, TOP, SIDE = 200, 60, 34, 12, 54, 20
K = ServiceKind
SHORT_LABELS = {K.MYSQL_REPLICA: "MySQL replica", K.NFS_SERVER: "NFS server"}


@dataclass
class Box:
    host: str
    kind: str
    label: str
    x: int
    y: int
    added: bool = False
    changed: bool = False
    state: str = ""  # the service's last known state; empty when it does not exist yet
    state_label: str = "not installed yet"
    width: int = COL_WIDTH - 2 * SIDE

    @property
    def cx(self) -> int:
        return self.x + self.width // 2

    @property
    def text_y(self) -> int:
        return self.y + BOX_HEIGHT // 2 + 5


@dataclass
class Edge:
    points: list[tuple[int, int]]
    kind: str  # traffic, writes, reads, database (both), files, replication, watch

    @property
    def svg_points(self) -> str:
        return " ".join(f"{x},{y}" for x, y in self.points)


@dataclass
class Column:
    host: Host
    x: int
    height: int
    boxes: list[Box] = field(default_factory=list)


@dataclass
class Diagram:
    width: int
    height: int
    columns: list[Column]
    edges: list[Edge]


def _host_of(target: str) -> str:
    return target.split(":", 1)[0]


def _frontend_targets(host: str, first: dict[str, str]) -> list[tuple[str, str, str]]:
    """What a PHP front end depends on: writes to the master, reads from the shadow (the master
    itself until there is a replica), the data files from the NFS server on another host."""
    out = []
    master, replica, nfs = (first.get(k) for k in (K.MYSQL_MASTER, K.MYSQL_REPLICA, K.NFS_SERVER))
    if master and replica:
        out += [(master, K.MYSQL_MASTER, "writes"), (replica, K.MYSQL_REPLICA, "reads")]
    elif master:
        out.append((master, K.MYSQL_MASTER, "database"))
    if nfs and nfs != host:
        out.append((nfs, K.NFS_SERVER, "files"))
    return out


def topology(
    phase: GrowthPhase,
    added: set[tuple[str, str]] | None = None,
    hosts: set[str] | None = None,
    changed: set[tuple[str, str]] | None = None,
) -> Diagram:
    """The picture of `phase`; placements in `added` (new) and `changed` (reconfigured) in this
    phase are highlighted.

    With `hosts` (names), only those hosts are drawn.
    """
    added, changed = added or set(), changed or set()
    placements = [
        p
        for p in phase.placements.select_related("host", "host__zone")
        if hosts is None or p.host.name in hosts
    ]
    kind_order = list(K.values)
    hosts: dict[str, Host] = {}
    for p in placements:
        hosts.setdefault(p.host.name, p.host)
    columns: dict[str, Column] = {}
    boxes: dict[tuple[str, str], Box] = {}
    for i, name in enumerate(hosts):
        columns[name] = Column(hosts[name], i * (COL_WIDTH + COL_GAP), 0)
    for p in sorted(placements, key=lambda p: kind_order.index(p.kind)):
        col = columns[p.host.name]
        y = TOP + len(col.boxes) * (BOX_HEIGHT + BOX_GAP)
        label = SHORT_LABELS.get(p.kind, p.get_kind_display())
        if p.kind == K.HEARTBEAT and p.settings.get("floating_address"):
            # The pair's floating address, where visitors reach the site.
            label = f"Failover · {str(p.settings['floating_address']).split('/')[0]}"
        box = Box(p.host.name, p.kind, label, col.x + SIDE, y)
        box.added = (p.host.name, p.kind) in added
        box.changed = (p.host.name, p.kind) in changed
        col.boxes.append(box)
        boxes[(p.host.name, p.kind)] = box
    states = {
        (s.host.name, s.kind): s
        for s in Service.objects.filter(host__name__in=list(hosts)).select_related("host")
    }
    for key, box in boxes.items():
        service = states.get(key)
        if service is not None:
            box.state, box.state_label = service.state, service.get_state_display()
            if service.last_checked_at:
                box.state_label += f" (checked {service.last_checked_at:%Y-%m-%d %H:%M} UTC)"
    first = {p.kind: p.host.name for p in sorted(placements, key=lambda p: p.host.name)}
    edges: list[Edge] = []
    bends: dict[str, int] = {}
    for p in placements:
        src = boxes[(p.host.name, p.kind)]
        settings = {**DEFAULT_SETTINGS.get(p.kind, {}), **p.settings}
        targets: list[tuple[str, str, str]] = []
        if p.kind == K.PERLBAL:
            targets = [(_host_of(b), K.PHP_FRONTEND, "traffic") for b in settings["backends"]]
        elif p.kind == K.MYSQL_REPLICA and settings.get("replicates_from"):
            targets = [(settings["replicates_from"], K.MYSQL_MASTER, "replication")]
        elif p.kind == K.HEARTBEAT:
            targets = [(_host_of(w), K.PERLBAL, "watch") for w in settings["watches"]]
        elif p.kind == K.PHP_FRONTEND:
            targets = _frontend_targets(p.host.name, first)
        for host_name, kind, edge_kind in targets:
            dst = boxes.get((host_name, kind))
            if dst is None or dst is src:
                continue
            y1, y2 = src.y + BOX_HEIGHT // 2, dst.y + BOX_HEIGHT // 2
            if dst.host == src.host:
                # Same column: out of the right edge, along the margin, back into the target;
                # each such arrow of a column a little further out, so they do not overlap.
                offset = bends[src.host] = bends.get(src.host, -1) + 1
                x, bend = src.x + src.width, src.x + src.width + 6 + 4 * offset
                edges.append(Edge([(x, y1), (bend, y1), (bend, y2), (x + 2, y2)], edge_kind))
            else:
                going_right = dst.x > src.x
                x1 = src.x + src.width if going_right else src.x
                x2 = dst.x if going_right else dst.x + dst.width
                edges.append(Edge([(x1, y1), (x2, y2)], edge_kind))
    tallest = max((len(c.boxes) for c in columns.values()), default=0)
    height = TOP + tallest * (BOX_HEIGHT + BOX_GAP) + SIDE
    for col in columns.values():
        col.height = height - 10
    width = max(len(columns) * (COL_WIDTH + COL_GAP) - COL_GAP, COL_WIDTH)
    return Diagram(width, height, list(columns.values()), edges)
