from django.core.management.base import BaseCommand

from hosts.topology import load_topology


class Command(BaseCommand):
    help = "Load the beamrider stack's zones, hosts, growth phases and services (idempotent)."

    def handle(self, *args, **options) -> None:
        counts = load_topology()
        if counts:
            summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
            self.stdout.write(self.style.SUCCESS(f"Topology loaded: {summary} created or updated."))
        else:
            self.stdout.write("Topology already up to date; nothing changed.")
