"""gunicorn's configuration for remora-web.service (installed as /etc/remora/gunicorn.conf.py).

Listens on 127.0.0.1:8000 by default: a front proxy on the same machine terminates TLS and
passes `X-Forwarded-Proto: https` (the settings trust it: SECURE_PROXY_SSL_HEADER). Two
variables from the environment file tune it:

- REMORA_WEB_BIND: where to listen, `HOST:PORT` or `unix:/run/remora/web.sock`
  (default 127.0.0.1:8000). Keep it on loopback or a socket unless nothing but the proxy can
  reach the address: the forwarded header is trusted.
- WEB_CONCURRENCY: the number of worker processes (gunicorn's own variable; default 2 per CPU
  plus 1, at most 8).
"""

import os

bind = [os.environ.get("REMORA_WEB_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1) + 1, 8))
# Threads: a client following a run's output (the API's `wait`, the run page's polling) waits
# in a request for up to 20 s; with sync workers a few followers would hold every worker.
worker_class = "gthread"
threads = int(os.environ.get("REMORA_WEB_THREADS") or 8)
timeout = 60  # a page is quick; jobs run in the workers, never in a request
graceful_timeout = 20
max_requests = 2000  # workers are recycled now and then (long-lived process hygiene)
max_requests_jitter = 200
accesslog = "-"  # the journal
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
forwarded_allow_ips = "127.0.0.1,::1"
proc_name = "remora-web"
