"""Remora Admin: a console to run the Remora web stack safely with a small team."""

import pymysql

# Django's MySQL backend imports MySQLdb; PyMySQL stands in for it (pure Python, no compiler).
pymysql.install_as_MySQLdb()
