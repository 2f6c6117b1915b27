"""The jobs tests' hosts and people (a host on the loopback sshd, its zone's admin) for the
browser tests that run jobs."""

from tests.jobs.conftest import alice, credential, lab_host, zone  # noqa: F401 (fixtures)
