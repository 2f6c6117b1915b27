from django.core.management.base import BaseCommand

from hosts.topology import load_topology


class Command(BaseCommand):
    help = (
        "Create the beamrider stack's zones, hosts, growth phases and services that are missing "
        "(idempotent; existing rows, edited or not, are left as they are)."
    )

    def handle(self, *args, **options) -> None:
        counts = load_topology()
        if counts:
            summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
            self.stdout.write(self.style.SUCCESS(f"Topology loaded: {summary} created."))
        else:
            self.stdout.write("Topology already up to date; nothing changed.")
