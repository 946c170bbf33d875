import { CAP_OUTPUT_PY, SERVER_PRELUDE_PY } from './warm-pytest-server.js';

/**
 * The pytest session server (`runners.warm: {".py": "session"}`), run as `python -c <this> <home cgroup or "">
 * <plan>` in the folder the files run in (see warm-python.ts): one pytest session, started once with the
 * template's options but no file, that runs one file per request, as pytest-xdist's workers run theirs. Per file
 * it takes the attempt's environment, folder and output file, moves itself into the attempt's cgroup (and back
 * after), collects the file, runs its tests (the last test's teardown ends every fixture, session-scoped ones too),
 * writes the file's own JUnit report and prints the summary a `pytest <file>` prints. After a file, the modules
 * imported from under the rootdir during it (the test module, the project's own) are forgotten, so the next file,
 * or this one's retry, imports them afresh; what else a file changes in the process (another library's state, a
 * thread it left running) stays, as in one pytest session.
 *
 * Protocol, JSON lines: requests on stdin `{"file", "junit", "cwd", "env", "out", "cgroup", "cap", "keep"}`; on
 * stdout first `{"ready": version, "site": folder}` (or `{"error": why}` and exit 3), then per request
 * `{"started": pid}` (this server's) once the file's output and cgroup are set, and `{"exit": code, "dropped": bytes}`
 * (pytest's exit code for the file alone). stdin's end ends it. An error of its own while a file runs: the file
 * ends with exit 3 (pytest's internal error) and the server exits, as nothing says what state it is in.
 */
export const WARM_PYTEST_SESSION =
  SERVER_PRELUDE_PY +
  String.raw`
home = sys.argv[1]
plan = json.loads(sys.argv[2])
# Requests come on a copy of stdin: pytest's capture replaces fd 0 while tests run.
requests = os.fdopen(os.dup(0), "r")
os.dup2(nul, 0)
sys.path[:] = [plan["path0"]] + base_path
try:
    from _pytest import timing
    from _pytest.config.exceptions import UsageError
    from _pytest.junitxml import LogXML
    from _pytest.main import ExitCode
except Exception as e:
    send({"error": "this pytest has not the internals a session server uses: %s" % e})
    sys.exit(3)
` +
  CAP_OUTPUT_PY +
  String.raw`

def move(cgroup):
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))

def fresh_reports(session, tr):
    session.testsfailed = 0
    session.testscollected = 0
    session.shouldstop = session.shouldfail = False
    tr.stats = {}
    tr.currentfspath = None
    tr._progress_nodeids_reported = set()
    tr._main_color = None
    tr._known_types = None
    tr._sessionstarttime = timing.time()

def run_file(session, config, tr, req):
    # pytest's own exit code for the file alone, its terminal output as "pytest <file>" prints it.
    xml = None
    if req.get("junit"):
        xml = LogXML(req["junit"], config.option.junitprefix, config.getini("junit_suite_name"), config.getini("junit_logging"),
                     config.getini("junit_duration_report"), config.getini("junit_family"), config.getini("junit_log_passing_tests"))
        config.pluginmanager.register(xml)
        xml.pytest_sessionstart()
    fresh_reports(session, tr)
    status = None
    try:
        items = session.perform_collect([req["file"]])
        if session.testsfailed and not config.option.continue_on_collection_errors:
            status = ExitCode.INTERRUPTED
            tr.write_sep("!", "%d error%s during collection" % (session.testsfailed, "s" if session.testsfailed != 1 else ""), red=True)
        elif not config.option.collectonly:
            for i, item in enumerate(items):
                # The last test's nextitem None ends every fixture, session-scoped ones too: each file starts afresh.
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=items[i + 1] if i + 1 < len(items) else None)
                if session.shouldfail or session.shouldstop:
                    break
        if status is None:
            status = ExitCode.TESTS_FAILED if session.testsfailed else ExitCode.NO_TESTS_COLLECTED if session.testscollected == 0 else ExitCode.OK
    except UsageError as e:
        status = ExitCode.USAGE_ERROR
        for m in e.args:
            tr.write_line("ERROR: %s" % m, red=True)
    tr._tw.line("")
    config.hook.pytest_terminal_summary(terminalreporter=tr, exitstatus=status, config=config)
    if session.shouldfail:
        tr.write_sep("!", str(session.shouldfail), red=True)
    tr.summary_stats()
    if xml is not None:
        config.pluginmanager.unregister(xml)
        xml.pytest_sessionfinish()
    return int(status)

class Serve:
    def pytest_collection(self, session):
        return True

    def pytest_runtestloop(self, session):
        config = session.config
        tr = config.pluginmanager.get_plugin("terminalreporter")
        capman = config.pluginmanager.get_plugin("capturemanager")
        root = str(config.rootpath) + os.sep
        send({"ready": pytest.__version__, "site": os.path.dirname(os.path.dirname(os.path.abspath(pytest.__file__)))})
        for line in requests:
            req = json.loads(line)
            code, broken, moved, started = 3, False, False, False
            before = set(sys.modules)
            stop, dropped, capper = threading.Event(), [0], None
            saved = (os.dup(1), os.dup(2))
            try:
                # pytest's capture keeps a copy of fds 1 and 2 to give back after each test: it is stopped while
                # they change, so what it gives back is this file's output file.
                if capman is not None:
                    capman.stop_global_capturing()
                fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
                if capman is not None:
                    capman.start_global_capturing()
                    capman.suspend_global_capture()
                os.chdir(req["cwd"])
                os.environ.clear()
                os.environ.update(req["env"])
                if req.get("cgroup"):
                    move(req["cgroup"])
                    moved = True
                send({"started": os.getpid()})
                started = True
                capper = threading.Thread(target=cap_output, args=(req["out"], req["cap"], req["keep"], stop, dropped), daemon=True)
                capper.start()
                code = run_file(session, config, tr, req)
            except BaseException as e:
                broken = True
                if started:
                    traceback.print_exc()
                else:
                    send({"failed": "cannot set up the file in the pytest session: %s" % e})
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    if capman is not None:
                        capman.stop_global_capturing()
                    os.dup2(saved[0], 1)
                    os.dup2(saved[1], 2)
                    if capman is not None:
                        capman.start_global_capturing()
                        capman.suspend_global_capture()
                    if moved:
                        move(home)
                except BaseException:
                    broken = True
                os.close(saved[0])
                os.close(saved[1])
            if capper is not None:
                stop.set()
                capper.join()
            plugins = {id(p) for p in config.pluginmanager.get_plugins()}
            for name in set(sys.modules) - before:
                f = getattr(sys.modules.get(name), "__file__", None) or ""
                if f.startswith(root) and id(sys.modules.get(name)) not in plugins:
                    del sys.modules[name]
            send({"exit": code, "dropped": dropped[0]})
            if broken:
                os._exit(3)
        os._exit(0)

os.chdir(plan["cwd"])
sys.argv = [plan["argv0"] or os.path.join(os.path.dirname(pytest.__file__), "__main__.py")] + plan["args"]
try:
    why = "it exited with code %s before its first test file" % pytest.main(plan["args"], plugins=[Serve()])
except BaseException as e:
    why = "it failed: %s" % e
send({"error": "pytest did not start its session in %s (%s)" % (plan["cwd"], why)})
os._exit(3)
`;
