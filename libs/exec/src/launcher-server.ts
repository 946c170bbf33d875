/**
 * The launcher, run as `python3 -c <this> <home cgroup or ""> [<cgroup to time the placements in> [<program to
 * time them with>...]]` (see launcher.ts): a small long-lived process that starts an attempt's program with
 * `posix_spawn` (glibc's is a vfork: no copy of the parent's page tables, which made each spawn from the worker's
 * 150 MB heap cost 5-9 ms on a 2-core VM), or with `clone3` straight into the attempt's cgroup (see clone_into),
 * in a session of its own, in the attempt's folder, environment and cgroup, and relays the program's stdout and
 * stderr as they come.
 *
 * Protocol, JSON lines. Requests on stdin: `{"id", "argv", "cwd", "env", "cgroup"}` (`argv[0]` an absolute path).
 * On stdout: `{"ready": 1, "placement": "clone3"|"move", "probe": {"clone3", "move"} | null}` first (how programs
 * get into their cgroups, and the milliseconds each way took when both were timed); per request `{"id", "pid"}` once
 * the program runs, or `{"id", "error"}`; then `{"id", "fd": 1|2, "data": base64}` as it prints, `{"id", "exit":
 * code}` (negative: the signal that ended it) and `{"id", "closed": 1}` once both its pipes are closed (pipes that
 * close before the exit is reaped are told just before it, in the same write). stdin's end ends the launcher;
 * what it started is ended by the worker (its process groups, cookies and cgroups), not by the launcher.
 */
export const LAUNCHER_SERVER = String.raw`
import base64, json, os, selectors, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
home = sys.argv[1] if len(sys.argv) > 1 else ""
proto = os.dup(1)
nul = os.open(os.devnull, os.O_RDWR)
os.dup2(nul, 1)
os.set_blocking(proto, True)
os.chdir("/")

# Messages go out once per round of events (flush): a program's exit and the end of its pipes, which come
# together, wake the worker once rather than two or three times.
outbox = []

def send(obj):
    outbox.append(json.dumps(obj))

def flush():
    if not outbox:
        return
    data = ("\n".join(outbox) + "\n").encode()
    outbox.clear()
    while data:
        data = data[os.write(proto, data):]

# Dispositions a Python sets (SIGPIPE and SIGXFSZ ignored) or this one sets (SIGINT) go back to their defaults
# in the program, as they are in a program the worker spawns itself.
DEFAULTS = [s for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP) if s]
# posix_spawn with setsid needs Python 3.8 and a libc that has it: tried once here, so a launcher that cannot start
# programs says so instead of failing the first attempt given to it.
try:
    probe = "/bin/true" if os.path.exists("/bin/true") else sys.executable
    os.waitpid(os.posix_spawn(probe, [probe] + ([] if probe == "/bin/true" else ["-c", ""]), {}, setsid=True, setsigdef=DEFAULTS), 0)
except Exception as e:
    send({"error": "posix_spawn with setsid does not work here: %s" % e})
    flush()
    sys.exit(3)

# Programs start straight in their attempt's cgroup where the kernel allows it (clone3 with CLONE_INTO_CGROUP, Linux
# 5.7): moving a process between cgroups (a write to cgroup.procs) waits for an RCU grace period, and a Node started
# right after such a move took 10-15 ms longer to run on a 2-core VM. Where clone3 is refused (an older kernel, a
# seccomp filter) or ctypes is missing, the launcher moves itself into the cgroup around posix_spawn instead.
CLONE_INTO_CGROUP = 0x200000000
SYS_CLONE3 = 435
try:
    import ctypes, struct
    libc_syscall = ctypes.CDLL(None, use_errno=True).syscall
    libc_syscall.restype = ctypes.c_long
except Exception:
    libc_syscall = None

def clone_into(cgroup, argv, env, w1, w2):
    """The program's pid, started as a fork would in cgroup (None: clone3 refused); OSError when it cannot run."""
    cg = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    er, ew = os.pipe()
    try:
        args = struct.pack("11Q", CLONE_INTO_CGROUP, 0, 0, 0, signal.SIGCHLD, 0, 0, 0, 0, 0, cg)
        buf = ctypes.create_string_buffer(args, len(args))
        pid = libc_syscall(ctypes.c_long(SYS_CLONE3), buf, ctypes.c_size_t(len(args)))
        if pid == 0:
            # The child: only system calls until exec (no fork handlers ran); why exec failed goes to the parent.
            try:
                os.setsid()
                for s in DEFAULTS:
                    signal.signal(s, signal.SIG_DFL)
                os.dup2(nul, 0)
                os.dup2(w1, 1)
                os.dup2(w2, 2)
                os.execve(argv[0], argv, env)
            except OSError as e:
                os.write(ew, str(e.errno or 0).encode())
            except BaseException as e:
                # What Python refuses before the system call (a NUL in a value, say), in Python's own words.
                os.write(ew, ("!" + str(e)).encode(errors="replace")[:512])
            finally:
                os._exit(127)
        if pid < 0:
            return None
        os.close(ew)
        ew = None
        # Empty once the program runs (the pipe closed on exec); else the errno of its exec, or "!" and why
        # Python refused the arguments (raised as posix_spawn raises it).
        failed = os.read(er, 1024)
        if failed:
            os.waitpid(pid, 0)
            if failed.startswith(b"!"):
                raise ValueError(failed[1:].decode(errors="replace"))
            code = int(failed)
            raise OSError(code, os.strerror(code), argv[0])
        return pid
    finally:
        os.close(cg)
        os.close(er)
        if ew is not None:
            os.close(ew)

def move(cgroup):
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))

def spawn_moved(cgroup, argv, env, **kw):
    """posix_spawn in a session of its own; with a cgroup, this launcher moved into it around the spawn. Not back
    home, the cgroup's end would kill this launcher unknowingly: it ends the cgroup, itself included, at once (the
    worker spawns programs itself meanwhile)."""
    if cgroup:
        move(cgroup)
    try:
        return os.posix_spawn(argv[0], argv, env, setsid=True, setsigdef=DEFAULTS, **kw)
    finally:
        if cgroup:
            try:
                move(home)
            except OSError as e:
                sys.stderr.write("launcher: cannot move back to cgroup %s (%s): ending cgroup %s and itself\n" % (home, e, cgroup))
                with open(os.path.join(cgroup, "cgroup.kill"), "w") as f:
                    f.write("1")

# clone3 is tried once on the launcher's own cgroup; "move" from then on when refused (or FLEET_LAUNCHER_CLONE3=off).
# Where both work, which is faster depends on the host, by several milliseconds a program either way. clone3 copies
# this process as a fork does: on a 2-core Firecracker VM that cost 5-7 ms a program, where a move and a
# posix_spawn cost about 0.1. A move makes the kernel's cgroup lock wait for RCU grace periods where it makes them,
# and a Node started right after one ran 10-15 ms longer on another VM, though a /bin/true did not. So, unless
# FLEET_LAUNCHER_CLONE3=on, both ways are timed, in a cgroup of their own under argv[2], with /bin/true (the fork's
# cost, precisely) and with the program argv[3:] names (one that starts threads, as Node does, for the move's):
# each started and waited for, the moves included, alternating, PROBE_ROUNDS times. A way's time is the sum over
# the programs of its fastest start (what else runs on the host only adds to a time: medians chose wrong under a
# test suite's load, and a Node start alone varies by as much as the difference here). The lower wins.
PROBE_ROUNDS = 5
placement = "move"
probed = None
choice = os.environ.get("FLEET_LAUNCHER_CLONE3", "auto")
if home and libc_syscall is not None and choice != "off":
    try:
        probe_pid = clone_into(home, [probe], {}, nul, nul)
        if probe_pid is not None:
            os.waitpid(probe_pid, 0)
            placement = "clone3"
    except Exception:
        pass
probe_parent = sys.argv[2] if len(sys.argv) > 2 else ""
if placement == "clone3" and choice != "on" and probe_parent:
    import time
    probe_dir = os.path.join(probe_parent, "launcher-probe-%d" % os.getpid())
    made = False
    try:
        os.mkdir(probe_dir)
        made = True
        programs = [[probe] + ([] if probe == "/bin/true" else ["-c", ""])] + ([sys.argv[3:]] if len(sys.argv) > 3 else [])
        times = {(way, n): [] for way in ("clone3", "move") for n in range(len(programs))}
        for _ in range(PROBE_ROUNDS):
            for n, argv in enumerate(programs):
                for way in ("clone3", "move"):
                    t = time.perf_counter()
                    pid = clone_into(probe_dir, argv, {}, nul, nul) if way == "clone3" else spawn_moved(probe_dir, argv, {})
                    os.waitpid(pid, 0)
                    times[(way, n)].append((time.perf_counter() - t) * 1000)
        probed = {way: sum(min(times[(way, n)]) for n in range(len(programs))) for way in ("clone3", "move")}
        placement = "move" if probed["move"] < probed["clone3"] else "clone3"
    except Exception as e:
        sys.stderr.write("launcher: could not time the placements in %s (%s): clone3 it is\n" % (probe_parent, e))
    finally:
        # Its programs have been waited for; the cgroup empties as they are reaped.
        for _ in range(100 if made else 0):
            try:
                os.rmdir(probe_dir)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)

sel = selectors.DefaultSelector()
wake_r, wake_w = os.pipe()
os.set_blocking(wake_r, False)
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
sel.register(wake_r, selectors.EVENT_READ, ("wake", None))
sel.register(0, selectors.EVENT_READ, ("stdin", None))
by_pid = {}
open_pipes = {}
# Programs whose pipes have ended before their exit was reaped (the kernel closes a process's files before it
# becomes a zombie): the end of their pipes waits to go with their exit, one wake of the worker rather than two
# (the worker does nothing with either half alone).
held = set()
pending = b""

def launch(req):
    rid = req["id"]
    cgroup = req.get("cgroup")
    r1 = w1 = r2 = w2 = None
    try:
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, w1, 1), (os.POSIX_SPAWN_DUP2, w2, 2)]
        env = {str(k): str(v) for k, v in req["env"].items()}
        os.chdir(req["cwd"])
        try:
            pid = clone_into(cgroup, req["argv"], env, w1, w2) if cgroup and placement == "clone3" else None
            if pid is None:
                pid = spawn_moved(cgroup, req["argv"], env, file_actions=actions)
        finally:
            os.chdir("/")
    except Exception as e:
        for fd in (r1, w1, r2, w2):
            if fd is not None:
                os.close(fd)
        why = "%s: %s" % (e.strerror or e, e.filename or req["argv"][0]) if isinstance(e, OSError) else repr(e)
        send({"id": rid, "error": why})
        return
    os.close(w1)
    os.close(w2)
    for fd, n in ((r1, 1), (r2, 2)):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ, ("out", (rid, n)))
    open_pipes[rid] = 2
    by_pid[pid] = rid
    send({"id": rid, "pid": pid})

def reap():
    while by_pid:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        rid = by_pid.pop(pid, None)
        if rid is None:
            continue
        if rid in held:
            held.discard(rid)
            send({"id": rid, "closed": 1})
        code = os.waitstatus_to_exitcode(status)
        send({"id": rid, "exit": code})

send({"ready": 1, "placement": placement, "probe": probed})
# Whatever ends the loop (stdin's end, an error), what was said goes out first: a program's pid must reach the
# worker, or it would count the program as never started and start it again.
try:
    while True:
        flush()
        for key, _ in sel.select():
            kind, what = key.data
            if kind == "wake":
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
            elif kind == "stdin":
                chunk = os.read(0, 1 << 16)
                if not chunk:
                    sys.exit(0)
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        launch(json.loads(line))
                reap()
            else:
                rid, n = what
                try:
                    data = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if data:
                    send({"id": rid, "fd": n, "data": base64.b64encode(data).decode()})
                else:
                    sel.unregister(key.fd)
                    os.close(key.fd)
                    open_pipes[rid] -= 1
                    if open_pipes[rid] == 0:
                        del open_pipes[rid]
                        # A program's pipes end as it exits: their end goes with its exit, which SIGCHLD brings
                        # if it is not reaped yet. Told at once when the exit went before (a child it left held them).
                        if rid in by_pid.values():
                            held.add(rid)
                            reap()
                        else:
                            send({"id": rid, "closed": 1})
finally:
    flush()
`;
