#!/bin/sh
# Stage two of a lab host's boot, run as PID 1 of the host's new PID namespace, already in its
# own network, mount, UTS, IPC and cgroup namespaces (lab/host.py starts it with unshare).
# It builds the host's root (an overlay on the base), gives it /proc, a read-only /sys, its own
# cgroup mounts, a private /dev and /run, and execs systemd in it without the capabilities to
# set the clock or load kernel modules. The environment names what to mount:
#   LAB_BASE LAB_UPPER LAB_WORK LAB_ROOT LAB_ARCHIVES LAB_HOSTNAME LAB_CONSOLE
set -eu

mount --make-rprivate /
mount -t overlay overlay \
  -o "lowerdir=$LAB_BASE,upperdir=$LAB_UPPER,workdir=$LAB_WORK,index=on,nfs_export=on" "$LAB_ROOT"
root=$LAB_ROOT

# Downloaded packages are shared by every host and kept across builds.
mount --bind "$LAB_ARCHIVES" "$root/var/cache/apt/archives"

# /proc of this PID namespace; kernel settings read-only, but for this host's own network.
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount --bind "$root/proc/sys/net" "$root/proc/sys/net"
mount -o remount,bind,ro "$root/proc/sys"
if [ -e "$root/proc/sysrq-trigger" ]; then mount --bind /dev/null "$root/proc/sysrq-trigger"; fi

# /sys read-only (this network namespace's devices), cgroups of this host only.
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,nodev,noexec,mode=0755 tmpfs "$root/sys/fs/cgroup"
mkdir -p "$root/sys/fs/cgroup/systemd" "$root/sys/fs/cgroup/unified"
mount -t cgroup -o none,name=systemd,nosuid,nodev,noexec cgroup "$root/sys/fs/cgroup/systemd"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup/unified"

# A private /dev with the few devices a server needs, and its own pseudo-terminals.
mount -t tmpfs -o nosuid,noexec,mode=0755 tmpfs "$root/dev"
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0 fuse:10:229; do
  IFS=: read -r name major minor <<EOF
$node
EOF
  mknod -m 0666 "$root/dev/$name" c "$major" "$minor"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/dev/shm"
# The host's console is the log file the machine keeps for it (shown when a boot fails).
touch "$root/dev/console"
mount --bind "$LAB_CONSOLE" "$root/dev/console"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$root/run"
hostname "$LAB_HOSTNAME"

export container=remora-lab
exec setpriv --bounding-set -sys_time,-sys_module -- chroot "$root" /lib/systemd/systemd \
  --log-target=console --show-status=no
