"""The permission journal (host side): changes that a root grader makes while it grades, undone even when it dies.

A grader running as root changes the permissions of paths it did not create: the grader's private folders
of its checkout (``PROTECTED_PATHS``) become root-only (``make_root_only``), and folders on the way to Python
that the sandbox user cannot enter get search permission for that user (``grant_search``: an ACL entry, or
``o+x`` without ``setfacl``).
Several graders may do this at once on one machine, in the same checkout or side by side, and any of them may
be killed at any moment.  So every change goes through one journal, ``LOCK_DIR/permissions.json`` (root-only),
read and written under an exclusive ``flock``:

* the first grader to change a path records its original state (mode and ACL) in the journal *before* it
  changes it; a grader that needs a path another grader already changed joins it as a holder;
* ``restore()`` (``Launcher.cleanup``: normal end, SIGTERM, an exception) leaves every path it holds, and the
  last holder to leave puts the path back as it was;
* a grader killed with SIGKILL never leaves: whoever opens the journal next sees that its process is gone
  (pid and start time no longer match) and restores what only that grader held.

SIGINT and SIGTERM wait while the journal is open (main thread), so a change is never half recorded.
"""
import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # where getfacl, useradd, ... are
JOURNAL_NAME = "permissions.json"


class TemporaryPermissions:
    """The permission changes of this grader process, recorded in the journal of ``lock_dir``."""

    def __init__(self, lock_dir):
        self.lock_dir = Path(lock_dir)
        self.me = _identity(os.getpid())
        self.held = []  # the paths this grader holds, as journal keys

    # -- changes ----------------------------------------------------------------
    def make_root_only(self, paths):
        """Each existing path (not a link) becomes root-only: folders 700, files 600."""
        with self._journal() as entries:
            for path in map(Path, paths):
                try:
                    mode = path.lstat().st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(mode):
                    continue
                self._hold(entries, path)
                os.chmod(path, 0o700 if stat.S_ISDIR(mode) else 0o600)

    def grant_search(self, paths, uid, gid):
        """Let ``uid`` enter every folder on the way to each of ``paths``; returns the folders changed.

        A folder changed by another grader (in the journal) is joined even when ``uid`` may enter it now: that
        grader may restore it at any time.
        """
        setfacl = shutil.which("setfacl", path=SAFE_PATH)
        with self._journal() as entries:
            blocked = set()
            for path in map(Path, paths):
                for folder in [*reversed(path.parents), path]:
                    try:
                        info = os.stat(folder)
                    except OSError:
                        break
                    if stat.S_ISDIR(info.st_mode) and (str(folder) in entries or not _can_search(info, uid, gid)):
                        blocked.add(folder)
            for folder in sorted(blocked):
                self._hold(entries, folder)
                done = setfacl and subprocess.run([setfacl, "-m", f"u:{uid}:x", str(folder)],
                                                  capture_output=True).returncode == 0
                if not done:
                    os.chmod(folder, os.stat(folder).st_mode | stat.S_IXOTH)
        return [str(folder) for folder in sorted(blocked)]

    def restore(self):
        """Leave every path this grader holds; the last holder of a path puts it back as it was."""
        if not self.held:
            return
        with self._journal() as entries:
            for key in self.held:
                holders = entries.get(key, {}).get("holders", [])
                if self.me in holders:
                    holders.remove(self.me)
            self.held = []

    # -- the journal ----------------------------------------------------------------
    def _hold(self, entries, path):
        """Record ``path``'s original state (if no grader holds it yet) and this grader as a holder, on disk,
        before the caller changes it: restoring a path that never changed is harmless, the reverse is not."""
        key = str(path)
        if key not in entries:
            entries[key] = {"mode": stat.S_IMODE(os.stat(path).st_mode), "acl": _acl(path), "holders": []}
        if self.me not in entries[key]["holders"]:
            entries[key]["holders"].append(self.me)
        if key not in self.held:
            self.held.append(key)
        self._write(entries)

    @contextlib.contextmanager
    def _journal(self):
        """The journal's entries, locked; on the way out paths whose holders are all gone are restored."""
        import fcntl

        with _signals_deferred():
            self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.lock_dir / (JOURNAL_NAME + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                entries = self._read()
                for entry in entries.values():
                    entry["holders"] = [holder for holder in entry["holders"] if _alive(holder)]
                try:
                    yield entries
                finally:
                    for key in [key for key, entry in entries.items() if not entry["holders"]]:
                        _restore(key, entries.pop(key))
                    self._write(entries)

    def _read(self):
        try:
            return json.loads((self.lock_dir / JOURNAL_NAME).read_text())
        except FileNotFoundError:
            return {}
        except ValueError:  # cannot happen (written atomically); start afresh rather than fail every grader
            return {}

    def _write(self, entries):
        fd, temporary = tempfile.mkstemp(dir=self.lock_dir, prefix=".permissions-")
        with os.fdopen(fd, "w") as handle:
            json.dump(entries, handle, indent=1)
        os.replace(temporary, self.lock_dir / JOURNAL_NAME)


def _can_search(info, uid, gid):
    return bool(info.st_mode & stat.S_IXOTH or info.st_uid == uid or (info.st_gid == gid
                                                                        and info.st_mode & stat.S_IXGRP))


def _identity(pid):
    """``[pid, start time]``: a process that died and whose pid was reused does not match."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return [pid, None]
    if fields[0] in ("Z", "X"):  # a zombie: dead, not yet reaped
        return [pid, "dead"]
    return [pid, fields[19]]  # field 22 of proc(5): starttime


def _alive(holder):
    pid, started = holder
    if os.path.isdir("/proc"):
        return _identity(pid) == [pid, started]
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _acl(path):
    """The ACL of ``path`` as ``getfacl`` prints it (None without getfacl)."""
    getfacl = shutil.which("getfacl", path=SAFE_PATH)
    if not getfacl:
        return None
    done = subprocess.run([getfacl, "--absolute-names", "--omit-header", str(path)], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def _restore(key, entry):
    try:
        setfacl = shutil.which("setfacl", path=SAFE_PATH)
        if entry["acl"] is not None and setfacl and _acl(key) != entry["acl"]:
            subprocess.run([setfacl, "--set-file=-", key], input=entry["acl"], text=True, capture_output=True)
        os.chmod(key, entry["mode"])
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def _signals_deferred():
    """SIGINT and SIGTERM that arrive meanwhile are handled afterwards (only the main thread can do this)."""
    received, saved = [], {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            saved[signum] = signal.signal(signum, lambda number, frame: received.append(number))
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        for signum in received:
            signal.raise_signal(signum)
