"""Degenerate submissions, generated from the reference: code that runs but computes nothing.

Each kind replaces every marked region (``### START CODE HERE ###`` ...) of
``solution/*.py``:

* ``zeros``, ``ones``, ``noise``, ``echo``, ``none``: a region that returns a value
  still runs the reference's code (as a nested function with the enclosing
  function's parameters), only to learn the plausible shape, dtype and type of the
  result, and returns a degenerate value of exactly that shape and dtype: zeros,
  ones, uniform noise (0/1 or integer values where the reference's are, drawn from
  the call's ``generator`` when it has one, so even "reproducible" holds), the
  first input's values tiled into that shape, or ``None``.  Regions in ``__init__``
  keep the reference's code (a constructor computes no result); other regions that
  return nothing (``set_mask``, ``update_masks``) do nothing.
* ``pass``: the stubs (``tools/make_stubs.py``) with ``raise NotImplementedError``
  replaced by ``pass``.

``write_family(folder)`` writes one submission folder per kind.
"""
import ast
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_stubs import MODULES, make_stub, marked_regions  # noqa: E402

KINDS = ("zeros", "ones", "noise", "echo", "none", "pass")

# Prepended to every generated module: turns the reference's result into the degenerate one.
DEGRADE = '''
def _degenerate_value(kind, value, inputs, generator=None):
    import random as _random
    import torch as _torch
    if kind == "none":
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(_degenerate_value(kind, v, inputs, generator) for v in value)
    if isinstance(value, dict):
        return {k: _degenerate_value(kind, v, inputs, generator) for k, v in value.items()}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        first = next((float(v) for v in inputs if isinstance(v, (int, float)) and not isinstance(v, bool)), 0.0)
        return type(value)({"zeros": 0.0, "ones": 1.0, "noise": _random.random(), "echo": first}[kind])
    if not isinstance(value, _torch.Tensor):
        return value
    value = value.detach()
    if kind == "zeros":
        return _torch.zeros_like(value)
    if kind == "ones":
        return _torch.ones_like(value)
    if kind == "noise":
        if not value.is_floating_point():
            high = max(int(value.max()) + 1, 2) if value.numel() else 2
            return _torch.randint(0, high, value.shape, generator=generator, dtype=value.dtype)
        if value.numel() and bool(((value == 0) | (value == 1)).all()):
            return _torch.randint(0, 2, value.shape, generator=generator).to(value.dtype)
        return _torch.rand(value.shape, generator=generator, dtype=value.dtype)
    source = next((v for v in inputs if isinstance(v, _torch.Tensor) and v.numel()), None)
    if source is None:
        return _torch.zeros_like(value)
    flat = source.detach().flatten().to(value.dtype)
    return flat.repeat(value.numel() // flat.numel() + 1)[: value.numel()].view(value.shape).clone()

'''


def _enclosing_function(tree, line):
    """The innermost ``def`` whose body contains 1-based ``line``."""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= line <= node.end_lineno:
            if best is None or node.lineno > best.lineno:
                best = node
    return best


def _returns_value(body_source):
    tree = ast.parse(textwrap.dedent(body_source))
    return any(isinstance(node, ast.Return) and node.value is not None for node in ast.walk(tree))


def degenerate_module(source, kind):
    """The text of ``source`` (a solution module) with every marked region made degenerate of ``kind``."""
    if kind == "pass":
        return make_stub(source).replace("raise NotImplementedError\n", "pass\n")
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    out, copied_to = [DEGRADE], 0
    for start, end in marked_regions(lines):
        function = _enclosing_function(tree, start + 1)
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        body = "".join(lines[start + 1:end])
        out += lines[copied_to:start + 1]
        if function.name == "__init__":
            out.append(body)
        elif not _returns_value(body):
            out.append(f"{indent}pass\n")
        else:
            params = [a.arg for a in function.args.args]
            signature = ", ".join(params)
            inputs = ", ".join(p for p in params if p != "self")
            generator = "generator" if "generator" in params else "None"
            out.append(f"{indent}def _reference_code({signature}):\n")
            out.append(textwrap.indent(textwrap.dedent(body), indent + "    "))
            out.append(f"{indent}return _degenerate_value({kind!r}, _reference_code({signature}), [{inputs}], {generator})\n")
        out.append(lines[end])
        copied_to = end + 1
    out += lines[copied_to:]
    return "".join(out)


def write_family(folder, kinds=KINDS):
    """Write ``folder/<kind>/{autoregressive,made,pixelcnn}.py`` for each kind; returns {kind: path}."""
    folders = {}
    for kind in kinds:
        target = Path(folder) / kind
        target.mkdir(parents=True, exist_ok=True)
        for name in MODULES:
            (target / name).write_text(degenerate_module((ROOT / "solution" / name).read_text(), kind))
        folders[kind] = target
    return folders
