/**
 * The warm pytest server, run as `python -c <this>` (see warm-python.ts): it imports pytest and its plugins once,
 * runs one throwaway session so pytest's lazy imports are done, then forks one child per test file. The child
 * starts its own session, joins the attempt's cgroup, takes the attempt's folder, environment and output file,
 * and runs `pytest.console_main()` as `python -m pytest` (or the `pytest` script) would. The server runs one
 * file at a time.
 *
 * While a file runs, the server keeps its output file under `cap` bytes on disk: four times a second, when the
 * file holds more, it punches a hole over all but the last `keep` bytes (fallocate's PUNCH_HOLE: the file's
 * length and the child's O_APPEND offset stay, so nothing the child writes meanwhile is lost, and the last lines
 * are always there to read back). Where the file system cannot punch holes it empties the file instead (and a
 * line written in the instant before that goes with it).
 *
 * Protocol, JSON lines: requests on stdin `{"argv0", "args", "path0", "cwd", "env", "out", "cgroup", "cap", "keep"}`
 * (`argv0` null: `python -m pytest`); on stdout first
 * `{"ready": version, "site": folder}` (or `{"error": why}` and exit 3), then per request `{"started": pid}` once the child is
 * set up (or `{"failed": why}`), and `{"exit": code, "dropped": bytes}` (code negative: the signal that ended it;
 * `dropped`: the output the cap took). stdin's end ends it.
 */
/**
 * Python: `cap_output(path, cap, keep, stop, dropped)`, run in a thread while a file runs: keeps its output file
 * under `cap` bytes on disk (see above), adding what it drops to `dropped[0]`, until `stop` is set.
 */
export const CAP_OUTPUT_PY = String.raw`
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fallocate = libc.fallocate
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
except Exception:
    fallocate = None

def cap_output(path, cap, keep, stop, dropped):
    # dropped[0]: bytes taken so far. Started when a file starts and joined when it ends (in the fork server: after
    # the fork and before the next, so no fork sees this thread).
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        return
    punched, can_punch = 0, fallocate is not None
    try:
        while not stop.wait(0.25):
            st = os.fstat(fd)
            if st.st_blocks * 512 <= cap:
                continue
            if can_punch:
                end = (st.st_size - keep) // 4096 * 4096
                if end <= punched:
                    continue
                if fallocate(fd, 3, punched, end - punched) == 0:
                    dropped[0] += end - punched
                    punched = end
                    continue
                # EOPNOTSUPP or ENOSYS: this file system cannot; any other error: try again at the next check.
                if ctypes.get_errno() not in (95, 38):
                    continue
                can_punch = False
            os.ftruncate(fd, 0)
            dropped[0] += st.st_size - punched
            punched = 0
    finally:
        os.close(fd)
`;

/**
 * Python: how both pytest servers begin. A terminal's Ctrl-C is ignored; the protocol's lines go to a copy of
 * stdout (`send`), and what Python or pytest would print to stdout goes to `nul`; `base_path` is `sys.path` without
 * its first entry; pytest is imported, or the server says why not and exits 3.
 */
export const SERVER_PRELUDE_PY = String.raw`
import json, os, signal, sys, threading, traceback
signal.signal(signal.SIGINT, signal.SIG_IGN)
proto = os.dup(1)
nul = os.open(os.devnull, os.O_RDWR)
os.dup2(nul, 1)

def send(obj):
    os.write(proto, (json.dumps(obj) + "\n").encode())

base_path = list(sys.path[1:])
try:
    import pytest
except Exception as e:
    send({"error": "cannot import pytest: %s" % e})
    sys.exit(3)
`;

export const WARM_PYTEST_SERVER =
  SERVER_PRELUDE_PY +
  String.raw`
import atexit, gc, tempfile, shutil, types

# One throwaway session in a folder of its own: pytest's lazy imports and its plugins' (through its assertion
# rewriting, as a cold run imports them, so no run warns that a plugin was imported before it could rewrite it)
# happen here, once, not in every child.
before = set(sys.modules)
warm = tempfile.mkdtemp(prefix="fleet-warmup-")
try:
    with open(os.path.join(warm, "fleet_warmup_check.py"), "w") as f:
        f.write("def test_warmup():\n    assert True\n")
    os.chdir(warm)
    pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", warm, "--junitxml", os.path.join(warm, "j.xml"), "fleet_warmup_check.py"])
except BaseException:
    pass
finally:
    os.chdir("/")
    for name in set(sys.modules) - before:
        f = getattr(sys.modules.get(name), "__file__", None) or ""
        if f.startswith(warm):
            del sys.modules[name]
    sys.path[:] = [""] + base_path
    shutil.rmtree(warm, ignore_errors=True)
gc.collect()
gc.freeze()
# The folder pytest was imported from (site-packages): installing or removing a package there changes its mtime,
# and the worker then retires this server rather than fork from modules that are no longer what is installed.
send({"ready": pytest.__version__, "site": os.path.dirname(os.path.dirname(os.path.abspath(pytest.__file__)))})

# A pytest Config as get_config() makes it before it reads the command line: the plugin manager with pytest's
# own plugins registered and their options added (about a third of a small file's time). It is the same for every
# file whose "-p no:..." options are the same, so it is made once here and every child gets its own copy by the
# fork; the child sets the file's own arguments and folder on it. Any failure here: the child makes its own.
import pathlib
import _pytest.config as pytest_config
prepared = {}

def blocked(args):
    out, i = [], 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "-p" and i < len(args):
            p = args[i]
            i += 1
        elif a.startswith("-p"):
            p = a[2:]
        else:
            continue
        if p.strip().startswith("no:"):
            out.append(p.strip())
    return tuple(out)

def prepare(args):
    key = blocked(args)
    if key not in prepared:
        try:
            prepared[key] = pytest_config.get_config([a for b in key for a in ("-p", b)])
        except BaseException:
            prepared[key] = None
    return key, prepared[key]

def use_prepared(key, config):
    made = pytest_config.get_config
    def get_config(args=None, plugins=None):
        nonlocal config
        if config is None or plugins or args is None or blocked(args) != key:
            return made(args, plugins)
        ready, config = config, None
        ready.invocation_params = type(ready.invocation_params)(args=args, plugins=plugins, dir=pathlib.Path.cwd())
        return ready
    pytest_config.get_config = get_config

def child(req, w, key, config):
    os.close(proto)
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if req.get("cgroup"):
        with open(os.path.join(req["cgroup"], "cgroup.procs"), "w") as f:
            f.write("0")
    fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.dup2(nul, 0)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.path[:] = [req["path0"]] + base_path
    main = req.get("argv0") or os.path.join(os.path.dirname(pytest.__file__), "__main__.py")
    sys.argv = [main] + req["args"]
    # __main__ is what a cold run's would be (pytest's __main__ or the script), not this server.
    module = types.ModuleType("__main__")
    module.__file__ = main
    sys.modules["__main__"] = module
    use_prepared(key, config)
    os.write(w, b"1")
    os.close(w)

` +
  CAP_OUTPUT_PY +
  String.raw`
for line in sys.stdin.buffer:
    req = json.loads(line)
    key, config = prepare(req["args"])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            child(req, w, key, config)
        except BaseException as e:
            os.write(w, ("0cannot set up the file's process: %s" % e).encode())
            os._exit(126)
        code = 1
        try:
            code = pytest.console_main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        # Then what an interpreter does when it exits (it waits for non-daemon threads, runs atexit functions: a
        # plugin's or a test's own), without tearing down the modules the server imported.
        for step in (threading._shutdown, atexit._run_exitfuncs, sys.stdout.flush, sys.stderr.flush):
            try:
                step()
            except BaseException:
                pass
        os._exit(code & 0xFF if code >= 0 else 1)
    os.close(w)
    ack = b""
    while True:
        part = os.read(r, 65536)
        if not part:
            break
        ack += part
    os.close(r)
    stop, dropped, capper = threading.Event(), [0], None
    if ack == b"1":
        send({"started": pid})
        capper = threading.Thread(target=cap_output, args=(req["out"], req["cap"], req["keep"], stop, dropped), daemon=True)
        capper.start()
    else:
        send({"failed": ack[1:].decode(errors="replace") or "the file's process ended while it was set up"})
    _, status = os.waitpid(pid, 0)
    if capper is not None:
        stop.set()
        capper.join()
    send({"exit": os.waitstatus_to_exitcode(status), "dropped": dropped[0]})
`;
