"""Test settings: the real settings, pointed at the real services this machine runs.

MariaDB at 127.0.0.1:3306 (root, empty password) and Redis db 15, unless DATABASE_URL or
TEST_REDIS_URL say otherwise.
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DATABASE_URL", "mysql://root:@127.0.0.1:3306/remora")
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Each test starts its chain afresh: a shared off-box copy would not match. The sink's own tests
# give each test a file of its own.
os.environ.setdefault("REMORA_AUDIT_SINK", "none")
# Archives of pruned events go to a scratch folder of this test session, not the checkout.
os.environ.setdefault("REMORA_AUDIT_ARCHIVE_DIR", tempfile.mkdtemp(prefix="remora-archives-"))

from remora_admin.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
