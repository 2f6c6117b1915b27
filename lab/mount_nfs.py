#!/usr/bin/python3
"""mount.nfs for the Remora lab's hosts ONLY: a userspace NFS client (libnfs) behind FUSE.

LAB ONLY: never install this on a real host. Real hosts use the kernel's NFS client and Debian's
own mount.nfs (nfs-common). The lab's kernel has no NFS client, so lab/base.py builds this into
the lab's Debian base as /sbin/mount.nfs and /sbin/mount.nfs4, behind a dpkg diversion: a later
`apt-get install nfs-common` puts Debian's helper beside it (mount.nfs.distrib). With it,
`mount -t nfs SERVER:/export DIR`, fstab `nfs` lines, `mount DIR`, systemd's mount units and
`umount DIR` work on lab hosts, over NFS, against a real server (nfs-ganesha on another host).
Imports nothing of the app: the standard library, fusepy (python3-fusepy, over libfuse2) and
Debian's libnfs13 through ctypes.

How it works
- mount(8) runs `mount.nfs SERVER:/export DIR [-sfnvrw] [-N NS] [-o OPTIONS]`. The helper
  forks; the child mounts the export with libnfs, then mounts FUSE on DIR (type fuse.nfs,
  source SERVER:/export) and, once the kernel has sent FUSE's INIT, tells the parent so over a
  pipe. The parent exits 0 then (or 32 with the reason, as mount.nfs does). The child serves on
  in a session of its own with no stdio (so no SSH session or terminal waits for it or takes it
  down; under systemd it stays in the mount unit) until DIR is unmounted, or SIGTERM unmounts it.
- NFSv3, whatever the options ask: v3 is stateless (no lease to renew), which suits one
  long-lived client, and it is libnfs 4.0's mature protocol. libnfs 4.0 documents its NFSv4 as
  "not yet functional"; against nfs-ganesha 4.3 it showed files owned by nobody (unless the
  server sends numeric owners), EPERM on writes to new files and ERANGE on opens. So vers=4,
  nfsvers=4 and mount.nfs4 are accepted and served over v3 (said with -v and in the journal).
  The server must offer v3 and rpcbind; Debian's nfs-ganesha does by default.
- Each NFS call carries the calling process's uid, gid and supplementary groups (from the FUSE
  request) as its AUTH_SYS credential, as the kernel's client does. Permission decisions are
  the server's, root squash included: allow_other, no default_permissions, access(2) asks the
  server. A libnfs context is not thread-safe, so FUSE runs single-threaded.
- Options: ro/rw, vers/nfsvers/v3/v4, soft with timeo (tenths of a second; hard is the
  default), sec=sys only, nosuid/nodev/noexec/sync/dirsync/noatime (to the kernel). Any other
  (_netdev, hard, intr, proto, rsize, nofail, x-...) is accepted and ignored.
"""

import ctypes
import errno
import os
import socket
import sys
import syslog
import time

from fusepy import FUSE, FuseOSError, Operations, fuse_get_context

lib = ctypes.CDLL("libnfs.so.13", use_errno=True)
P, U64 = ctypes.c_void_p, ctypes.c_uint64
FAILED = 32  # mount(8)'s "mount failure"
TO_THE_KERNEL = {"nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync", "async", "dirsync",
                 "atime", "noatime"}  # fmt: skip
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


class Stat64(ctypes.Structure):  # struct nfs_stat_64
    _fields_ = [(n, U64) for n in ("dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size",
                "blksize", "blocks", "atime", "mtime", "ctime", "atime_nsec", "mtime_nsec",
                "ctime_nsec", "used")]  # fmt: skip


class StatVFS64(ctypes.Structure):  # struct nfs_statvfs_64
    _fields_ = [(n, U64) for n in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
                "f_files", "f_ffree", "f_favail", "f_fsid", "f_flag", "f_namemax")]  # fmt: skip


class Dirent(ctypes.Structure):  # the head of struct nfsdirent: all that is read of it
    pass


Dirent._fields_ = [("next", ctypes.POINTER(Dirent)), ("name", ctypes.c_char_p)]


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


def _declare() -> None:
    """The libnfs calls used (the sync API of /usr/include/nfsc/libnfs.h, libnfs 4.0)."""
    i, u32, s, ref = ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p, ctypes.POINTER
    signatures = {
        "nfs_init_context": (P, []),
        "nfs_get_error": (s, [P]),
        "nfs_set_version": (i, [P, i]),
        "nfs_set_timeout": (None, [P, i]),
        "nfs_set_autoreconnect": (None, [P, i]),
        "nfs_set_dircache": (None, [P, i]),
        "nfs_umask": (ctypes.c_uint16, [P, ctypes.c_uint16]),
        "nfs_set_auth": (None, [P, P]),
        "libnfs_authunix_create": (P, [s, u32, u32, u32, ref(u32)]),
        "nfs_mount": (i, [P, s, s]),
        "nfs_lstat64": (i, [P, s, ref(Stat64)]),
        "nfs_statvfs64": (i, [P, s, ref(StatVFS64)]),
        "nfs_access": (i, [P, s, i]),
        "nfs_opendir": (i, [P, s, ref(P)]),
        "nfs_readdir": (ref(Dirent), [P, P]),
        "nfs_closedir": (None, [P, P]),
        "nfs_mkdir2": (i, [P, s, i]),
        "nfs_rmdir": (i, [P, s]),
        "nfs_create": (i, [P, s, i, i, ref(P)]),
        "nfs_open": (i, [P, s, i, ref(P)]),
        "nfs_close": (i, [P, P]),
        "nfs_pread": (i, [P, P, U64, U64, s]),
        "nfs_pwrite": (i, [P, P, U64, U64, s]),
        "nfs_fsync": (i, [P, P]),
        "nfs_truncate": (i, [P, s, U64]),
        "nfs_ftruncate": (i, [P, P, U64]),
        "nfs_unlink": (i, [P, s]),
        "nfs_rename": (i, [P, s, s]),
        "nfs_link": (i, [P, s, s]),
        "nfs_symlink": (i, [P, s, s]),
        "nfs_readlink": (i, [P, s, s, i]),
        "nfs_chmod": (i, [P, s, i]),
        "nfs_lchown": (i, [P, s, i, i]),
        "nfs_lutimes": (i, [P, s, ref(Timeval)]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes


class MountError(Exception):
    pass


def parse(argv: list[str]) -> tuple[str, str, dict[str, str | None], set[str]]:
    """mount(8)'s helper arguments: (SERVER:/export, DIR, options, flags)."""
    positional, options, flags = [], {}, set()
    args = iter(argv)
    for arg in args:
        if arg in ("-o", "-N", "-t"):
            value = next(args, "")
            for item in filter(None, value.split(",") if arg == "-o" else []):
                key, equals, val = item.partition("=")
                options.pop({"ro": "rw", "rw": "ro"}.get(key, ""), None)  # the last one wins
                options[key] = val if equals else None
        elif arg.startswith("-") and len(arg) > 1:
            flags.update(arg[1:])
        else:
            positional.append(arg)
    if len(positional) != 2:
        raise SystemExit("usage: mount.nfs SERVER:/export DIR [-sfnvrw] [-o OPTIONS]")
    if flags & {"r", "w"}:
        options.pop("rw" if "r" in flags else "ro", None)
        options["ro" if "r" in flags else "rw"] = None
    return positional[0], os.path.abspath(positional[1]), options, flags


def check(spec: str, target: str, options: dict, program: str) -> tuple[str, str, str]:
    """What is refused before any NFS call: returns (server, export, the NFS version asked)."""
    server, _, export = spec.rpartition(":")
    server = server.strip("[]")
    if not server or not export.startswith("/"):
        raise MountError(f"remote share not in 'host:/dir' format: {spec}")
    if not os.path.isdir(target):
        raise MountError(f"mount point {target} does not exist")
    with open("/proc/self/mountinfo") as mountinfo:
        if any(line.split()[4] == target for line in mountinfo):
            raise MountError(f"{target} is busy or already mounted")
    if options.get("sec", "sys") != "sys":
        raise MountError(f"sec={options['sec']} is not supported (the lab's client: sec=sys)")
    asked = options.get("vers") or options.get("nfsvers")
    asked = asked or ("4" if "v4" in options or program.endswith("4") else "3")
    if asked.split(".")[0] not in ("3", "4"):
        raise MountError(f"NFS version {asked} is not supported (the lab's client speaks v3)")
    try:
        socket.getaddrinfo(server, 2049, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise MountError(f"Failed to resolve server {server}: {error.strerror}") from None
    return server, export, asked


def connect(server: str, export: str, options: dict) -> int:
    """A libnfs context with the export mounted (as root, the caller of mount)."""
    nfs = lib.nfs_init_context()
    if not nfs:
        raise MountError("cannot create an NFS context")
    lib.nfs_set_version(nfs, 3)  # NFS_V3: see the docstring
    lib.nfs_set_dircache(nfs, 0)  # another host may change a directory at any time
    lib.nfs_umask(nfs, 0)  # the kernel applied the caller's umask already
    lib.nfs_set_timeout(nfs, 30000)  # the mount itself fails rather than hangs
    status = lib.nfs_mount(nfs, server.encode(), export.encode())
    if status == -errno.EACCES:  # what ganesha answers a client its export does not list
        raise MountError(f"access denied by server while mounting {server}:{export}")
    if status < 0:
        detail = (lib.nfs_get_error(nfs) or b"").decode(errors="replace")
        if not detail or "nfs_service failed" in detail:  # refused, reset or timed out
            detail = "no answer from an NFSv3 server there (the lab's client speaks NFSv3)"
        raise MountError(f"mounting {server}:{export} failed: {detail}")
    soft = "soft" in options and "hard" not in options
    timeo = int(options.get("timeo") or 600)  # tenths of a second, as for the kernel's client
    lib.nfs_set_timeout(nfs, timeo * 100 if soft else -1)
    lib.nfs_set_autoreconnect(nfs, -1)  # hard: wait for the server to come back
    return nfs


def caller_groups(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return [int(g) for g in line.split()[1:]][:16]  # AUTH_SYS carries 16
    except (OSError, ValueError):
        pass
    return []


class NFS(Operations):
    """The FUSE operations: each one NFS calls made with the caller's credentials."""

    use_ns = True  # fusepy: times in nanoseconds
    flag_utime_omit_ok = 1  # libfuse: pass UTIME_NOW/UTIME_OMIT on (else `touch -m` is lost)

    def __init__(self, nfs: int, ready: int):
        self.nfs, self.ready = nfs, ready
        self.credential: tuple | None = None
        self.written: set[int] = set()
        self.host = socket.gethostname().encode()

    def __call__(self, op, *args):
        if op not in ("init", "destroy", "release"):
            self._as_caller()
        return super().__call__(op, *args)

    def _as_caller(self) -> None:
        uid, gid, pid = fuse_get_context()
        groups = caller_groups(pid) if pid else []
        if (uid, gid, groups) != self.credential:
            array = (ctypes.c_uint32 * len(groups))(*groups)
            auth = lib.libnfs_authunix_create(self.host, uid, gid, len(groups), array)
            if not auth:
                raise FuseOSError(errno.ENOMEM)
            lib.nfs_set_auth(self.nfs, auth)  # libnfs frees the one it had
            self.credential = (uid, gid, groups)

    def _check(self, status: int) -> int:
        if status >= 0:
            return status
        code = -status
        if code in (errno.EFAULT, errno.EINTR):  # RPC failure or soft timeout: an I/O error
            detail = (lib.nfs_get_error(self.nfs) or b"").decode(errors="replace")
            syslog.syslog(syslog.LOG_WARNING, f"NFS call failed: {detail}")
            code = errno.EIO
        raise FuseOSError(code)

    def init(self, path):
        os.write(self.ready, b"ok")  # the mount is in place: the parent may return
        os.close(self.ready)
        quiet = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(quiet, fd)
        os.close(quiet)

    # --- metadata -----------------------------------------------------------------------------

    def getattr(self, path, fh=None):
        st = Stat64()
        self._check(lib.nfs_lstat64(self.nfs, path.encode(), ctypes.byref(st)))
        names = ("ino", "mode", "nlink", "uid", "gid", "size", "blocks", "blksize", "rdev")
        attrs = {f"st_{k}": getattr(st, k) for k in names}
        for k in ("atime", "mtime", "ctime"):
            attrs[f"st_{k}"] = getattr(st, k) * 10**9 + getattr(st, f"{k}_nsec")
        return attrs

    def access(self, path, amode):
        if amode == os.F_OK:
            self.getattr(path)
            return 0
        return self._check(lib.nfs_access(self.nfs, path.encode(), amode))

    def statfs(self, path):
        sv = StatVFS64()
        self._check(lib.nfs_statvfs64(self.nfs, path.encode(), ctypes.byref(sv)))
        return {k: getattr(sv, k) for k, _ in StatVFS64._fields_ if k not in ("f_fsid", "f_flag")}

    def chmod(self, path, mode):
        return self._check(lib.nfs_chmod(self.nfs, path.encode(), mode & 0o7777))

    def chown(self, path, uid, gid):  # -1: unchanged
        return self._check(lib.nfs_lchown(self.nfs, path.encode(), uid, gid))

    def utimens(self, path, times=None):
        if times is None or times == (UTIME_NOW, UTIME_NOW):  # `touch`: the server's clock
            return self._check(lib.nfs_lutimes(self.nfs, path.encode(), None))
        current = self.getattr(path) if UTIME_OMIT in times else {}
        pair = (Timeval * 2)()
        for n, (t, key) in enumerate(zip(times, ("st_atime", "st_mtime"), strict=True)):
            ns = time.time_ns() if t == UTIME_NOW else current[key] if t == UTIME_OMIT else t
            pair[n] = Timeval(ns // 10**9, ns % 10**9 // 1000)
        return self._check(lib.nfs_lutimes(self.nfs, path.encode(), pair))

    # --- directories and names ----------------------------------------------------------------

    def readdir(self, path, fh):
        handle = P()
        self._check(lib.nfs_opendir(self.nfs, path.encode(), ctypes.byref(handle)))
        names = [".", ".."]
        try:
            entry = lib.nfs_readdir(self.nfs, handle)
            while entry:
                name = entry.contents.name.decode(errors="surrogateescape")
                if name not in (".", ".."):
                    names.append(name)
                entry = lib.nfs_readdir(self.nfs, handle)
        finally:
            lib.nfs_closedir(self.nfs, handle)
        return names

    def mkdir(self, path, mode):
        return self._check(lib.nfs_mkdir2(self.nfs, path.encode(), mode & 0o7777))

    def rmdir(self, path):
        return self._check(lib.nfs_rmdir(self.nfs, path.encode()))

    def unlink(self, path):
        return self._check(lib.nfs_unlink(self.nfs, path.encode()))

    def rename(self, old, new):
        return self._check(lib.nfs_rename(self.nfs, old.encode(), new.encode()))

    def link(self, target, source):  # fusepy's names: `ln source target`
        return self._check(lib.nfs_link(self.nfs, source.encode(), target.encode()))

    def symlink(self, target, source):  # fusepy's names: `ln -s source target`
        return self._check(lib.nfs_symlink(self.nfs, source.encode(), target.encode()))

    def readlink(self, path):
        buffer = ctypes.create_string_buffer(4097)
        self._check(lib.nfs_readlink(self.nfs, path.encode(), buffer, 4096))
        return buffer.value.decode(errors="surrogateescape")

    # --- files (fh: libnfs's struct nfsfh pointer) ---------------------------------------------

    def create(self, path, mode, fi=None):
        fh, flags = P(), os.O_CREAT | os.O_RDWR
        self._check(lib.nfs_create(self.nfs, path.encode(), flags, mode & 0o7777, fh))
        return fh.value

    def open(self, path, flags):
        fh = P()
        wanted = flags & (os.O_ACCMODE | os.O_TRUNC | os.O_APPEND | os.O_SYNC)
        self._check(lib.nfs_open(self.nfs, path.encode(), wanted, fh))
        return fh.value

    def read(self, path, size, offset, fh):
        buffer = ctypes.create_string_buffer(size)
        count = self._check(lib.nfs_pread(self.nfs, fh, offset, size, buffer))
        return buffer.raw[:count]

    def write(self, path, data, offset, fh):
        self.written.add(fh)
        return self._check(lib.nfs_pwrite(self.nfs, fh, offset, len(data), data))

    def truncate(self, path, length, fh=None):
        if fh:
            return self._check(lib.nfs_ftruncate(self.nfs, fh, length))
        return self._check(lib.nfs_truncate(self.nfs, path.encode(), length))

    def fsync(self, path, datasync, fh):
        self.written.discard(fh)
        return self._check(lib.nfs_fsync(self.nfs, fh))

    def flush(self, path, fh):  # close(2): what was written is on the server's disk, as on NFS
        return self.fsync(path, 0, fh) if fh in self.written else 0

    def release(self, path, fh):
        self.written.discard(fh)
        lib.nfs_close(self.nfs, fh)
        return 0


def serve(spec: str, target: str, server: str, export: str, options: dict, ready: int):
    """The child: connect, mount FUSE, serve until unmounted. Failures go to `ready`."""
    try:
        nfs = connect(server, export, options)
    except MountError as error:
        os.write(ready, str(error).encode())
        os._exit(FAILED)
    to_kernel = {k: True for k in options if k in TO_THE_KERNEL}
    try:
        FUSE(NFS(nfs, ready), target, foreground=True, nothreads=True, allow_other=True,
             nonempty=True, big_writes=True, use_ino=True, fsname=spec, subtype="nfs",
             ro="ro" in options, **to_kernel)  # fmt: skip
    except RuntimeError as error:  # the FUSE mount failed (libfuse said why on stderr)
        os.write(ready, f"mounting {spec} on {target} failed ({error})".encode())
        os._exit(FAILED)
    os._exit(0)


def main(argv: list[str]) -> int:
    spec, target, options, flags = parse(argv[1:])
    syslog.openlog("mount.nfs(lab)", syslog.LOG_PID, syslog.LOG_DAEMON)
    try:
        server, export, asked = check(spec, target, options, os.path.basename(argv[0]))
    except MountError as error:
        print(f"mount.nfs: {error}", file=sys.stderr)
        return FAILED
    if "f" in flags:  # --fake: mount(8) wants the helper's blessing only
        return 0
    _declare()
    ready_read, ready = os.pipe()
    if os.fork() == 0:
        os.close(ready_read)
        os.setsid()  # a session of its own: the caller's terminal or SSH session may end
        os.chdir("/")
        os.closerange(3, ready)  # nothing of the caller's but stdio (until INIT) and the pipe
        os.closerange(ready + 1, 65536)
        serve(spec, target, server, export, options, ready)
    os.close(ready)
    answer = b""
    while chunk := os.read(ready_read, 4096):
        answer += chunk
    if answer != b"ok":
        print(f"mount.nfs: {answer.decode(errors='replace') or 'the client died'}", file=sys.stderr)
        return FAILED
    how = "NFSv3" if asked == "3" else f"NFSv{asked} asked, served over NFSv3"
    said = f"{spec} mounted on {target} ({how}; lab: userspace client over FUSE)"
    syslog.syslog(said)
    if "v" in flags:
        print(f"mount.nfs: {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
