"""The suite's settings on MySQL/MariaDB through PyMySQL (pure Python, no mysqlclient
build), for tests/integration/test_unsupported_database.py: DATABASE_URL=mysql://..."""

import pymysql

# Django's MySQL backend requires mysqlclient 1.4.3 or newer and reads its version.
pymysql.version_info = (2, 2, 1, "final", 0)
pymysql.install_as_MySQLdb()

from tests.settings import *  # noqa: E402, F403
