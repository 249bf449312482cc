"""``/proc/PID/status`` read once for everyone (both sides; Linux, empty elsewhere): memory and process state."""


def status_fields(pid="self"):
    """``{"VmRSS": "12345 kB", "State": "S (sleeping)", "Uid": "0\t0\t0\t0", ...}`` of ``pid``; {} where unreadable."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    except OSError:
        return {}


def memory_kb(pid="self"):
    """Virtual, resident and peak resident size of ``pid`` in kB: ``{"vm_kb", "rss_kb", "peak_rss_kb"}``, those
    that can be read."""
    fields, sizes = status_fields(pid), {}
    for key, name in (("vm_kb", "VmSize"), ("rss_kb", "VmRSS"), ("peak_rss_kb", "VmHWM")):
        try:
            sizes[key] = int(fields[name].split()[0])
        except (KeyError, ValueError, IndexError):
            pass
    return sizes
