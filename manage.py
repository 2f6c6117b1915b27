#!/usr/bin/env python
"""Django's command-line utility for Remora Admin (remora_admin/__main__.py, which an installed
console runs as `python -m remora_admin`): a configuration error is one line on stderr and exit
status 2, a database that cannot be reached exit status 3; `--traceback` shows the traceback."""

from remora_admin.__main__ import main

if __name__ == "__main__":
    main()
