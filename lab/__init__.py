"""Real Debian 12 hosts on one machine, for the tests and the demo (see README "The lab").

`python -m lab up|down|status` (or `make lab`, `make lab-down`, `make lab-status`). The lab
imports nothing of the app and the app never imports it: the console reads the lab's state file
(`state.json` in the run directory) to point the demo inventory at the hosts.

Isolation (LAB-NOTES.md): every host has its own network, mount, PID, UTS, IPC and cgroup
namespaces and runs systemd as PID 1; the hosts' bridge lives in a namespace of its own; the
machine's own namespace gets no lab address and no route to the lab, and reaches each host only
through a loopback relay (127.0.77.N:22 → a unix socket → the host's sshd). apt inside the hosts
reaches only the machine's Debian mirror, through a relay as well.
"""
