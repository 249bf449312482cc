"""Launchers (host side): who the worker runs as, with which limits, and how everything it started is ended.

``Launcher``: a grader run by an ordinary user (a student's laptop): the worker is a process of its own
session with memory, file-size and core limits.  ``PrivilegedLauncher``: a grader run as root (Gradescope,
CI, a TA's container): besides, the worker runs as a sandbox user of its own from a small pool
(``ps1grader``, ``ps1grader1``, ...; an ``flock`` says which is taken), without network, with a copy of the
submission; the grader's private folders are root-only meanwhile (``permission_journal.py``), and ending a
worker kills every process of its user.
"""
import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from .. import settings
from ..errors import GraderError
from ..paths import GRADING, ROOT
from ..proc import status_fields
from .permission_journal import SAFE_PATH, TemporaryPermissions

IS_WINDOWS = os.name == "nt"
DEFAULT_USER = "ps1grader"
USER_POOL_SIZE = 8
LOCK_DIR = Path("/var/lock/ps1-grader") if Path("/var/lock").is_dir() else Path(tempfile.gettempdir()) / "ps1-grader-locks"
PROTECTED_PATHS = (".git",)  # never readable by the worker's user
# BEGIN STAFF ONLY (tools/build_release.py leaves this out of the students' copy, which has none of these)
# staff_tests/ holds the mutants: pieces of the solution
PROTECTED_PATHS += ("hidden_tests", "solution", "staff", "staff_tests")
# END STAFF ONLY
SKIPPED_NAMES = {"__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store"}
MAX_COPIED_FILE_BYTES = 64 * 1024 * 1024
MAX_COPIED_TOTAL_BYTES = 512 * 1024 * 1024
SHARED_TEMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


@dataclasses.dataclass
class Limits:
    """What the worker may use.  ``memory_mb`` is on top of what Python and torch take at start."""

    memory_mb: int = settings.MEMORY_MB
    gpu_memory_mb: int = settings.GPU_MEMORY_MB  # only where the worker sees a GPU
    nproc: int | None = None  # RLIMIT_NPROC; only for a user of its own (it counts all of the user's processes)
    fsize_mb: int = settings.FILE_SIZE_MB
    threads: int = settings.THREADS

    def as_argument(self):
        return json.dumps(dataclasses.asdict(self))


def thread_environment():
    """Variables that make numerical libraries single-threaded and results reproducible."""
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8",
            "MPLBACKEND": "Agg"}


def is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


class Launcher:
    """Policy for a grader that runs as an ordinary user: no user switch, same limits."""

    privileged = False

    def __init__(self, limits=None):
        self.limits = limits or Limits()

    def describe(self):
        return "worker runs as the current user (not root: no user switch)"

    def prepare_submission(self, submission_dir):
        """The folder the worker imports the student's files from."""
        return Path(submission_dir).resolve()

    def popen_kwargs(self):
        env = dict(os.environ)
        env.update(thread_environment())
        kwargs = {"env": env, "cwd": str(ROOT)}
        if IS_WINDOWS:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        return kwargs

    def kill_all(self, process):
        """Kill the worker and what it started (its process group; Windows: its process tree)."""
        if IS_WINDOWS:
            if process.poll() is None:
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True)
        else:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            process.kill()
        except OSError:
            pass

    def protect(self, paths):
        """Make paths unreadable for the worker (nothing to do without a user switch)."""

    def cleanup(self):
        """End of grading: nothing of the worker may be left running."""


class PrivilegedLauncher(Launcher):
    """Policy for a grader running as root: the worker runs as an unprivileged user of its own."""

    privileged = True

    def __init__(self, limits=None, user=None):
        super().__init__(limits)
        self._lock_file = None
        self.user = self._claim_user(user)
        import pwd

        entry = pwd.getpwnam(self.user)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        if self.uid == 0 or self.gid == 0:
            raise GraderError(f"the sandbox user {self.user!r} must not be root")
        if self.limits.nproc is None:
            self.limits.nproc = settings.PROCESSES
        _become_subreaper()
        self.network_problem = _leave_network()
        self.permissions = TemporaryPermissions(LOCK_DIR)
        self.sandbox = None
        try:
            self.granted = self._grant_search()
            self.kill_user_processes()  # leftovers of a grader that died
            self.sandbox = Path(tempfile.mkdtemp(prefix="ps1-grader-"))
            os.chmod(self.sandbox, 0o711)  # the user may enter, not list
            self.home = self.sandbox / "home"
            (self.home / "tmp").mkdir(parents=True)
            for path in (self.home, self.home / "tmp"):
                os.chown(path, self.uid, self.gid)
                os.chmod(path, 0o700)
        except BaseException:
            self.cleanup()
            raise
        self._copies = {}

    # -- the user -----------------------------------------------------------
    def _claim_user(self, requested):
        """Take a user of the pool that no other grader on this machine is using."""
        import fcntl

        LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(LOCK_DIR, 0o700)
        names = [requested] if requested else [DEFAULT_USER] + [f"{DEFAULT_USER}{i}" for i in range(1, USER_POOL_SIZE)]
        deadline = time.monotonic() + 600
        while True:
            for name in names:
                handle = open(LOCK_DIR / f"{name}.lock", "a")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    handle.close()
                    continue
                self._lock_file = handle
                return _ensure_user(name) if not requested else _existing_user(name)
            if time.monotonic() > deadline:
                raise GraderError("every sandbox user is taken by another grader on this machine")
            time.sleep(0.5)

    def describe(self):
        text = f"worker runs as user {self.user!r} (uid {self.uid}), the grader as root"
        text += (f"; network NOT isolated ({self.network_problem})" if self.network_problem
                 else "; no network (a network namespace of its own)")
        if self.granted:
            text += ("; gave that user search (x) permission on " + ", ".join(self.granted)
                     + " to reach Python and torch, until grading ends")
        return text

    def _grant_search(self):
        """Let the user reach the interpreter, its libraries and the grader's code, until ``cleanup``.

        A folder on the way that the user cannot enter (typically ``/root``, 700, when
        Python was installed with pyenv there) gets search permission for that user
        only (an ACL, with ``setfacl``), or else for others (``o+x``: enter, not
        list).  Files inside keep their own permissions.  ``permission_journal.py`` restores
        the folders when the last grader that needs them ends.
        """
        needed = {Path(sys.executable), Path(os.path.realpath(sys.executable)), Path(sys.prefix),
                  Path(sys.base_prefix), Path(sys.exec_prefix), GRADING}
        needed |= {Path(p) for p in sys.path if p and "-packages" in p and os.path.isdir(p)}
        return self.permissions.grant_search(sorted(needed), self.uid, self.gid)

    # -- files --------------------------------------------------------------
    def prepare_submission(self, submission_dir):
        source = Path(submission_dir).resolve()
        if source not in self._copies:
            target = self.sandbox / f"submission{len(self._copies) or ''}"
            _copy_regular_files(source, target)
            self._copies[source] = target
        return self._copies[source]

    def protect(self, paths):
        """Make each existing path root-only (folders 700, files 600) until ``cleanup``, before any worker
        starts."""
        self.permissions.make_root_only(paths)

    def popen_kwargs(self):
        env = {"PATH": SAFE_PATH, "HOME": str(self.home), "TMPDIR": str(self.home / "tmp"),
               "USER": self.user, "LOGNAME": self.user, "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1",
               "MPLCONFIGDIR": str(self.home / "tmp"), "XDG_CACHE_HOME": str(self.home / "tmp")}
        env.update(thread_environment())
        return {"env": env, "cwd": str(self.home), "user": self.uid, "group": self.gid, "extra_groups": [],
                "umask": 0o077, "start_new_session": True}

    # -- ending -------------------------------------------------------------
    def kill_all(self, process):
        super().kill_all(process)
        _kill_as_user(self.uid, self.gid)
        try:
            process.wait(timeout=30)  # before any orphan is reaped: keep its exit status for Popen
        except subprocess.TimeoutExpired:
            pass
        self.kill_user_processes()

    def kill_user_processes(self, attempts=20):
        """SIGKILL every process of the sandbox user, until none is left alive."""
        for _ in range(attempts):
            _kill_as_user(self.uid, self.gid)
            _reap_orphans()
            if not user_processes(self.uid):
                return True
            time.sleep(0.05)
        return not user_processes(self.uid)

    def cleanup(self):
        try:
            self.kill_user_processes()
            _reap_orphans()
            if self.sandbox is not None:
                shutil.rmtree(self.sandbox, ignore_errors=True)
            _remove_owned_by(self.uid, SHARED_TEMP_FOLDERS)  # what the student's code left in /tmp and the like
        finally:
            self.permissions.restore()  # only now that nothing of the worker's user runs any more
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def make_launcher(limits=None, user=None, switch_user=True):
    """The launcher for this process: a user switch when running as root on POSIX."""
    if switch_user and is_root() and not IS_WINDOWS:
        return PrivilegedLauncher(limits, user)
    return Launcher(limits)


# -- helpers ----------------------------------------------------------------
def _existing_user(name):
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        raise GraderError(f"no user {name!r} on this machine") from None
    return name


def _ensure_user(name):
    """``name`` if it exists or can be created with useradd, else ``nobody``."""
    import pwd

    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        pass
    useradd = shutil.which("useradd", path=SAFE_PATH)
    if useradd:
        nologin = next((p for p in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(p)), "/bin/false")
        subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", nologin, name], capture_output=True)
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        return _existing_user("nobody")


def _copy_regular_files(source, target):
    """Copy the regular files and folders of ``source``: no links, no devices, no caches, bounded size."""
    total = 0
    target.mkdir(mode=0o755)
    if not source.is_dir():  # then every file is reported missing, one by one
        return
    for folder, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = [d for d in dirs if d not in SKIPPED_NAMES and not os.path.islink(os.path.join(folder, d))]
        relative = Path(folder).relative_to(source)
        for d in dirs:
            (target / relative / d).mkdir(mode=0o755)
        for name in files:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if name in SKIPPED_NAMES or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_COPIED_FILE_BYTES:
                continue
            total += info.st_size
            if total > MAX_COPIED_TOTAL_BYTES:
                return
            # O_NOFOLLOW: the file cannot have been swapped for a link since lstat
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as src, open(target / relative / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(target / relative / name, 0o644)


def _remove_owned_by(uid, folders):
    """Delete the entries of ``folders`` (not below) that belong to ``uid``; never follows links."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def _become_subreaper():
    """Orphans of the worker become the grader's children, so that they are reaped (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _leave_network():
    """Move this process into a new network namespace holding only a loopback that is down.

    Only the calling thread moves, and processes it starts afterwards inherit the
    namespace: call it from the thread that starts the workers.  Needs root (or
    CAP_SYS_ADMIN); a container may forbid it.

    Returns:
        "" when done, else why not (the grader then goes on with the network).
    """
    if not sys.platform.startswith("linux"):
        return "not Linux"
    clone_newnet = 0x40000000
    try:
        if hasattr(os, "unshare"):  # Python >= 3.12
            os.unshare(clone_newnet)
            return ""
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(clone_newnet) != 0:
            return os.strerror(ctypes.get_errno())
        return ""
    except (OSError, AttributeError) as error:
        return str(error)


def _reap_orphans():
    """Reap the sandbox user's orphans that the grader adopted as subreaper, without blocking.

    Only zombies that are not root's are reaped, and only after the worker itself
    has been waited for, so no exit status that ``Popen`` needs is taken away.
    """
    if IS_WINDOWS:
        return
    for pid in _zombie_children():
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _pids():
    """The pids listed in /proc (Linux; none elsewhere)."""
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def _zombie_children():
    """Zombies whose parent is this process and whose real uid is not root's."""
    me = str(os.getpid())
    found = []
    for pid in _pids():
        status = status_fields(pid)
        if (status.get("State", "").startswith("Z") and status.get("PPid") == me
                and status.get("Uid", "0").split()[0] != "0"):
            found.append(pid)
    return found


def user_processes(uid):
    """Pids of the live (not zombie) processes whose real, effective or saved uid is ``uid`` (Linux)."""
    found = []
    for pid in _pids():
        status = status_fields(pid)
        if not status or status.get("State", "").startswith(("Z", "X")):
            continue
        if str(uid) in status.get("Uid", "").split()[:3]:
            found.append(pid)
    return found


def _kill_as_user(uid, gid):
    """Fork a helper that becomes ``uid`` and sends SIGKILL to every process of that uid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only makes syscalls
        pid = os.fork()
    if pid == 0:  # the helper: no Python-level locks are touched here
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            for _ in range(100):
                os.kill(-1, signal.SIGKILL)
            code = 0
        except ProcessLookupError:
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
