# The sandbox launcher. PythonSandbox starts it as process 1 of fresh PID, mount and network
# namespaces (as root there, or as the mapped root of a user namespace) and writes its settings as
# one JSON object to its stdin. It builds the run's file system, starts the program as a child under
# the run's limits and, in test mode, runs the tests itself against that child. Its only trusted
# output is the verdict file, opened before anything untrusted runs; the program cannot see it.
import ctypes, json, os, resource, struct, sys

cfg = json.loads(sys.stdin.buffer.read().decode("utf-8"))
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
SETUP_FAILED = 125


def die(what):
    sys.stderr.write("sandbox setup failed: %s\n" % what)
    sys.stderr.flush()
    os._exit(SETUP_FAILED)


def check(rc, what):
    if rc != 0:
        die("%s: %s" % (what, os.strerror(ctypes.get_errno())))


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 262144
ATTR_RDONLY, ATTR_NOSUID, ATTR_NODEV, ATTR_NOEXEC = 1, 2, 4, 8


def mount(src, dst, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    check(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), "mount " + dst)


class MountAttr(ctypes.Structure):
    _fields_ = [("set", ctypes.c_uint64), ("clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def setattr_mount(path, recursive, set_, clr):
    attr = MountAttr(set_, clr, 0, 0)
    check(libc.syscall(442, -100, path.encode(), 0x8000 if recursive else 0, ctypes.byref(attr),
                       ctypes.sizeof(attr)), "mount_setattr " + path)


verdict_fd = os.open(cfg["verdict"], os.O_WRONLY | os.O_CLOEXEC)
cgroup_fds = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cfg["cgroup_procs"]]
uid, harness_uid, isolate = cfg["uid"], cfg["harness_uid"], cfg["isolate"]
work = "/work" if isolate else cfg["root"]
if isolate:
    # A new root on a small tmpfs holding only the interpreter's files (bound read-only), four
    # device files and the scratch tmpfs; the host's tree is detached, so no host file, socket or
    # /proc is reachable.
    root = cfg["root"]
    inside = lambda p: os.path.join(root, p.lstrip("/"))
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tailguard-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for d in cfg["dirs"]:
        os.makedirs(inside(d), exist_ok=True)
        mount(d, inside(d), None, MS_BIND | MS_REC)
    for f in cfg["files"] + ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]:
        os.makedirs(os.path.dirname(inside(f)), exist_ok=True)
        open(inside(f), "a").close()
        mount(f, inside(f), None, MS_BIND)
    for link, target in cfg["links"]:     # created last: nothing above walks through them
        os.makedirs(os.path.dirname(inside(link)), exist_ok=True)
        os.symlink(target, inside(link))
    os.mkdir(inside("/work"))
    owner = max(uid, 0)
    mount("tailguard-work", inside("/work"), "tmpfs", MS_NOSUID | MS_NODEV,
          "size=%d,nr_inodes=4096,mode=700,uid=%d,gid=%d" % (cfg["disk"], owner, owner))
    os.mkdir(inside("/.old"))
    check(libc.syscall(41 if os.uname().machine == "aarch64" else 155, root.encode(), inside("/.old").encode()),
          "pivot_root")
    os.chdir("/")
    check(libc.umount2(b"/.old", 2), "detach the host tree")
    os.rmdir("/.old")
    setattr_mount("/", True, ATTR_RDONLY | ATTR_NOSUID, 0)
    setattr_mount("/work", False, ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC, ATTR_RDONLY)
    with open("/work/main.py", "w", encoding="utf-8") as f:
        f.write(cfg["program"])
    os.chown("/work/main.py", owner, owner)
else:
    with open(os.path.join(work, "main.py"), "w", encoding="utf-8") as f:
        f.write(cfg["program"])


def no_fork_filter():
    """A seccomp filter that makes fork, vfork, clone and clone3 fail with EAGAIN: one process, no threads."""
    machine = os.uname().machine
    if machine == "x86_64":
        arch, calls = 0xC000003E, [56, 57, 58, 435]
    elif machine == "aarch64":
        arch, calls = 0xC00000B7, [220, 435]
    else:
        die("no process filter for machine " + machine)
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    kill, allow, eagain = 0x80000000, 0x7FFF0000, 0x00050000 | 11
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, kill)]          # the x32 ABI's numbers
    for nr in calls:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eagain)]
    prog += [(ret, 0, 0, allow)]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *i) for i in prog))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog), ctypes.addressof(buf))
    check(libc.prctl(22, 2, ctypes.byref(fprog), 0, 0), "install the no-fork filter")


tests = cfg.get("tests")
if tests is not None:
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
python = cfg["python"]
# -u: unbuffered, so what the program printed survives the kill that ends every run (-I ignores
# PYTHONUNBUFFERED)
if tests is None:
    argv = [python, "-I", "-S", "-B", "-u", os.path.join(work, "main.py")]
else:
    argv = [python, "-I", "-S", "-B", "-u", "-c", cfg["runner"], os.path.join(work, "main.py")]

pid = os.fork()
if pid == 0:
    try:
        for fd in cgroup_fds:
            os.write(fd, str(os.getpid()).encode())
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        if tests is not None:
            high_r, high_w = os.dup(req_r), os.dup(resp_w)      # above every open fd: no clobbering
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
        os.closerange(5 if tests is not None else 3, 1 << 16)
        resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu"], cfg["cpu"] + 1))
        resource.setrlimit(resource.RLIMIT_AS, (cfg["memory"], cfg["memory"]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["file"], cfg["file"]))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if uid >= 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (cfg["processes"], cfg["processes"]))
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        else:
            for cap in range(64):
                libc.prctl(24, cap, 0, 0, 0)          # PR_CAPBSET_DROP; EINVAL past the last cap
        check(libc.prctl(38, 1, 0, 0, 0), "set no_new_privs")
        if cfg["single_process"]:
            no_fork_filter()
        os.chdir(work)
        os.execve(python, argv, {"HOME": work, "TMPDIR": work, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                                 "LD_LIBRARY_PATH": cfg["library_path"]})
    except BaseException as e:
        sys.stderr.write("sandbox setup failed: %s\n" % e)
        sys.stderr.flush()
        os._exit(SETUP_FAILED)

# The harness from here on: no longer root where the run has its own user ids, never dumpable, so
# the program can neither signal, trace nor read it (as process 1 of the namespace it also ignores
# signals sent from inside).
libc.prctl(4, 0, 0, 0, 0)                             # PR_SET_DUMPABLE 0
if harness_uid >= 0:
    os.setgroups([])
    os.setgid(harness_uid)
    os.setuid(harness_uid)


def ended(status, usage):
    if os.WIFEXITED(status):
        return {"exit": os.WEXITSTATUS(status), "signal": None, "cpu": usage.ru_utime + usage.ru_stime}
    return {"exit": None, "signal": os.WTERMSIG(status), "cpu": usage.ru_utime + usage.ru_stime}


def write_verdict(v):
    data = json.dumps(v).encode()
    while data:
        data = data[os.write(verdict_fd, data):]


if tests is None:
    _, status, usage = os.wait4(pid, 0)
    write_verdict({"program": ended(status, usage)})
    os._exit(0)

os.close(req_r)
os.close(resp_w)
codec = {"__name__": "codec"}
exec(compile(cfg["runner"], "runner", "exec"), codec)


def program_state(wait):
    """How the program ended (None: still running); with wait, it is given two seconds to end."""
    import time
    for _ in range(200 if wait else 1):
        got, status, usage = os.wait4(pid, os.WNOHANG)
        if got != 0:
            return ended(status, usage)
        if wait:
            time.sleep(0.01)
    return None


def describe(state):
    if state is None:
        return "closed its pipe"
    if state["signal"] is not None:
        return "was killed by signal %d" % state["signal"]
    return "exited with code %d" % state["exit"]


write_verdict(codec["harness"](req_w, resp_r, tests, program_state, describe, cfg["max_message"]))
os._exit(0)
