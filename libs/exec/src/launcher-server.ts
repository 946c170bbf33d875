/**
 * The launcher, run as `python3 -c <this> <home cgroup or "">` (see launcher.ts): a small long-lived process that
 * starts an attempt's program with `posix_spawn` (glibc's is a vfork: no copy of the parent's page tables, which
 * made each spawn from the worker's 150 MB heap cost 5-9 ms on a 2-core VM), in a session of its own, in the
 * attempt's folder, environment and cgroup, and relays the program's stdout and stderr as they come.
 *
 * Protocol, JSON lines. Requests on stdin: `{"id", "argv", "cwd", "env", "cgroup"}` (`argv[0]` an absolute path).
 * On stdout: `{"ready": 1}` first; per request `{"id", "pid"}` once the program runs, or `{"id", "error"}`; then
 * `{"id", "fd": 1|2, "data": base64}` as it prints, `{"id", "exit": code}` (negative: the signal that ended it)
 * and `{"id", "closed": 1}` once both its pipes are closed. stdin's end ends the launcher; what it started is
 * ended by the worker (its process groups, cookies and cgroups), not by the launcher.
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
pending = b""

def move(cgroup):
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))

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
        moved = False
        try:
            if cgroup:
                move(cgroup)
                moved = True
            pid = os.posix_spawn(req["argv"][0], req["argv"], env, file_actions=actions, setsid=True, setsigdef=DEFAULTS)
        finally:
            os.chdir("/")
            if moved:
                try:
                    move(home)
                except OSError as e:
                    # Not back home: the attempt's end would kill this launcher unknowingly. End both now.
                    sys.stderr.write("launcher: cannot move back to cgroup %s (%s): ending the attempt's group and itself\n" % (home, e))
                    with open(os.path.join(cgroup, "cgroup.kill"), "w") as f:
                        f.write("1")
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
        code = os.waitstatus_to_exitcode(status)
        send({"id": rid, "exit": code})

send({"ready": 1})
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
                        send({"id": rid, "closed": 1})
                        # A program's pipes end as it exits: when it is gone already, its exit goes in the same
                        # message (one wake of the worker, not two); otherwise SIGCHLD brings it.
                        reap()
finally:
    flush()
`;
