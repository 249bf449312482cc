#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (this
# folder is then /autograder/source).  It installs the CPU build of torch and
# what grading needs (requirements-autograder.txt), checks that they import, and
# creates the unprivileged user that runs the students' code (grader.py would
# create it on first use too; here it is created once, with the image).
#
# Overridable from the environment (the staff tests use them to install nothing):
#   PS1_PYTHON           interpreter to install into and check   (default: python3)
#   PS1_TORCH_VERSION    torch version                            (default: 2.13.0)
#   PS1_TORCH_INDEX_URL  index with that build                    (default: PyTorch's CPU wheels)
#   PS1_SKIP_INSTALL=1   install nothing, only check and create the user
#   PS1_SANDBOX_USER     the user for student code                (default: ps1grader)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PS1_PYTHON:-python3}"
TORCH_VERSION="${PS1_TORCH_VERSION:-2.13.0}"
TORCH_INDEX_URL="${PS1_TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
SANDBOX_USER="${PS1_SANDBOX_USER:-ps1grader}"

if [ "${PS1_SKIP_INSTALL:-0}" != 1 ]; then
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        echo "setup.sh: no pip for $PYTHON; installing python3-pip with apt-get"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pip
    fi
    # Debian/Ubuntu's Python refuses system-wide installs (PEP 668) unless told; this image is ours alone.
    export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
    "$PYTHON" -m pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL"
    "$PYTHON" -m pip install -r "$HERE/requirements-autograder.txt"
fi

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"setup.sh: the grader needs Python >= 3.10, this is {sys.version.split()[0]}")
import gradescope_utils, numpy, pytest, torch  # noqa: F401,E401
print(f"setup.sh: python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}, "
      f"pytest {pytest.__version__}")
PY

if [ "$(id -u)" = 0 ] && ! id "$SANDBOX_USER" >/dev/null 2>&1; then
    nologin=/bin/false
    for shell in /usr/sbin/nologin /sbin/nologin; do
        if [ -x "$shell" ]; then nologin="$shell"; break; fi
    done
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$nologin" "$SANDBOX_USER" \
        || echo "setup.sh: could not create user $SANDBOX_USER; grader.py will fall back to 'nobody'"
fi
# The student's code (as that user) must read the grader's library and the public tests.
chmod -R a+rX "$HERE/src" "$HERE/tests" "$HERE/grader.py"
echo "setup.sh: done"
