"""Shared test setup. The real services (MariaDB, Redis, sshd, Chromium) come from the plugins
below; each starts or installs what it needs, or fails with a message that names the service."""

import pytest
from django.db.backends.mysql.operations import DatabaseOperations

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.sshd",
    "tests.fixtures.browser",
    "tests.fixtures.lab",
]

_original_sql_flush = DatabaseOperations.sql_flush
GENESIS_HEAD_SQL = (
    "INSERT INTO audit_chainhead (id, sequence, hash, pruned_through) "
    "VALUES (1, 0, '" + "0" * 64 + "', 0)"
)


def _truncating_sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    # Transactional tests empty every table afterwards. Django's MySQL flush uses DELETE, which
    # the audit table's append-only trigger refuses (as it should); TRUNCATE is DDL, fires no
    # trigger, and is what a test database reset means.
    statements = _original_sql_flush(
        self, style, tables, reset_sequences=True, allow_cascade=allow_cascade
    )
    if "audit_chainhead" in tables:
        # The chain head row is created by a migration; put it back as a new database has it.
        statements.append(GENESIS_HEAD_SQL)
    if "audit_sinkcursor" in tables:
        statements.append("INSERT INTO audit_sinkcursor (id, sequence) VALUES (1, 0)")
    return statements


DatabaseOperations.sql_flush = _truncating_sql_flush


@pytest.fixture
def topology(db):
    """The seed's beamrider topology, loaded as `manage.py load_topology` loads it."""
    from hosts.topology import load_topology

    load_topology()
