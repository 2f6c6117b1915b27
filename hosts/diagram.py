"""Lay out a growth phase's services as a picture: one column per host, arrows for traffic.

The layout is computed here and drawn by `templates/hosts/topology.svg.html`, so the page needs
no script to show it.
"""

from dataclasses import dataclass, field

from .models import DEFAULT_SETTINGS, GrowthPhase, Host, ServiceKind

COL_WIDTH, COL_GAP, BOX_HEIGHT, BOX_GAP, TOP, SIDE = 200, 60, 34, 12, 54, 20
K = ServiceKind


@dataclass
class Box:
    host: str
    kind: str
    label: str
    x: int
    y: int
    added: bool = False
    width: int = COL_WIDTH - 2 * SIDE

    @property
    def cx(self) -> int:
        return self.x + self.width // 2

    @property
    def text_y(self) -> int:
        return self.y + BOX_HEIGHT // 2 + 5


@dataclass
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int
    kind: str  # traffic, replication, watch


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


def topology(
    phase: GrowthPhase,
    added: set[tuple[str, str]] | None = None,
    hosts: set[str] | None = None,
) -> Diagram:
    """The picture of `phase`; placements in `added` are highlighted as new in this phase.

    With `hosts` (names), only those hosts are drawn.
    """
    added = added or set()
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
        box = Box(p.host.name, p.kind, p.get_kind_display(), col.x + SIDE, y)
        box.added = (p.host.name, p.kind) in added
        col.boxes.append(box)
        boxes[(p.host.name, p.kind)] = box
    edges: list[Edge] = []
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
        for host_name, kind, edge_kind in targets:
            dst = boxes.get((host_name, kind))
            if dst is None or dst is src:
                continue
            if dst.host == src.host:
                # Same column: run down the box's right edge.
                x = src.x + src.width
                edges.append(
                    Edge(x, src.y + BOX_HEIGHT // 2, x, dst.y + BOX_HEIGHT // 2, edge_kind)
                )
            else:
                going_right = dst.x > src.x
                x1 = src.x + src.width if going_right else src.x
                x2 = dst.x if going_right else dst.x + dst.width
                edges.append(
                    Edge(x1, src.y + BOX_HEIGHT // 2, x2, dst.y + BOX_HEIGHT // 2, edge_kind)
                )
    tallest = max((len(c.boxes) for c in columns.values()), default=0)
    height = TOP + tallest * (BOX_HEIGHT + BOX_GAP) + SIDE
    for col in columns.values():
        col.height = height - 10
    width = max(len(columns) * (COL_WIDTH + COL_GAP) - COL_GAP, COL_WIDTH)
    return Diagram(width, height, list(columns.values()), edges)
