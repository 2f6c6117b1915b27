"""Pages of runs fetched in two steps: the page's ids alone, then those rows with their hosts,
zones and people.

In one query with those joins MariaDB starts from the hosts and sorts every run before it can
take the newest 50 (0.7 s at 100,000 runs); asked for the ids alone it walks the runs' primary
key (or the index of the filter) backwards and stops at 50 (bench/audit_scale.py).
"""

from django.db.models import QuerySet

RELATED = ("host__zone", "requested_by", "approved_by")


class IdsFirst:
    """A queryset of runs whose slices are fetched ids first. Holds only what a list needs:
    ordering, filtering (a cursor's position) and slicing."""

    def __init__(self, runs: QuerySet):
        self.runs = runs

    def order_by(self, *fields: str) -> "IdsFirst":
        return IdsFirst(self.runs.order_by(*fields))

    def filter(self, *args, **kwargs) -> "IdsFirst":
        return IdsFirst(self.runs.filter(*args, **kwargs))

    def __getitem__(self, key: slice) -> list:
        ids = list(self.runs.values_list("pk", flat=True)[key])
        found = self.runs.model.objects.select_related(*RELATED).in_bulk(ids)
        return [found[pk] for pk in ids if pk in found]


def newest(runs: QuerySet, count: int) -> list:
    """The newest `count` of these runs (ordered newest first)."""
    return IdsFirst(runs.order_by("-pk"))[:count]
