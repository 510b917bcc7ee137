# Two halves of the code verifier's protocol, in one file so that both ends encode values the same way.
#
# The runner (run as __main__ by the sandboxed child) imports the program as module "solution",
# lists its top-level names and then answers requests on fd 3 with replies on fd 4, one JSON object
# per line: call a function, read or set an attribute, list, len, index or test membership of an
# object it returned. Values cross as plain data only: None, bool, int, float, str, bytes, list,
# tuple, dict, set and frozenset, checked by exact type, so an object with its own __eq__ (or an int
# subclass) never reaches the tests as a value; any other object stays in the program and crosses as
# an opaque handle.
#
# The harness (harness(), run by the sandbox launcher in its own process) executes the tests one
# top-level statement at a time with the program's names bound to proxies. Every comparison happens
# there, on values it decoded itself; the verdict is what it writes, never the program's exit status.
import json
import os
import sys


def encode(x, keep, depth=0):
    if depth > 200:
        raise ValueError("value nested more than 200 levels deep")
    t = type(x)
    if x is None or t is bool or t is int or t is str:
        return x
    if t is float:
        return {"f": repr(x)}
    if t is list:
        return [encode(v, keep, depth + 1) for v in x]
    if t is tuple:
        return {"t": [encode(v, keep, depth + 1) for v in x]}
    if t is dict:
        return {"d": [[encode(k, keep, depth + 1), encode(v, keep, depth + 1)] for k, v in x.items()]}
    if t is set:
        return {"s": [encode(v, keep, depth + 1) for v in x]}
    if t is frozenset:
        return {"z": [encode(v, keep, depth + 1) for v in x]}
    if t is bytes:
        return {"b": x.hex()}
    return keep(x)


def decode(v, handle, depth=0):
    if depth > 200:
        raise ValueError("value nested more than 200 levels deep")
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is list:
        return [decode(x, handle, depth + 1) for x in v]
    if t is not dict or len(v) != 1 and "h" not in v:
        raise ValueError("malformed value")
    if "h" in v:
        return handle(v["h"], v.get("type"))
    (tag, x), = v.items()
    if tag == "f" and type(x) is str:
        return float(x)
    if tag == "b" and type(x) is str:
        return bytes.fromhex(x)
    if type(x) is not list:
        raise ValueError("malformed value")
    if tag == "t":
        return tuple(decode(e, handle, depth + 1) for e in x)
    if tag == "s":
        return {decode(e, handle, depth + 1) for e in x}
    if tag == "z":
        return frozenset(decode(e, handle, depth + 1) for e in x)
    if tag == "d":
        out = {}
        for pair in x:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("malformed value")
            out[decode(pair[0], handle, depth + 1)] = decode(pair[1], handle, depth + 1)
        return out
    raise ValueError("malformed value")


class Lines:
    """Reads newline-terminated lines from a file descriptor; a line longer than the cap is an error."""

    def __init__(self, fd, cap):
        self.fd, self.cap, self.buf = fd, cap, b""

    def next(self):
        while b"\n" not in self.buf:
            if len(self.buf) > self.cap:
                raise ValueError("message longer than %d bytes" % self.cap)
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if len(line) > self.cap:
            raise ValueError("message longer than %d bytes" % self.cap)
        return line


def send(fd, msg):
    data = (json.dumps(msg) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def message(e):
    try:
        return str(e)[:300]
    except BaseException:
        return ""


def serve(path):
    import types
    kept = []

    def keep(x):
        kept.append(x)
        return {"h": len(kept) - 1, "type": type(x).__name__}

    def lookup(i, _type):
        if type(i) is not int or not 0 <= i < len(kept):
            raise ValueError("no such object")
        return kept[i]

    module = types.ModuleType("solution")
    module.__file__ = path
    sys.modules["solution"] = module
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        exec(compile(source, "main.py", "exec"), module.__dict__)
    except BaseException as e:
        send(4, {"ready": False, "exc": type(e).__name__, "msg": message(e)})
        return
    names = {}
    for name, value in list(module.__dict__.items()):
        if name.startswith("__") or isinstance(value, types.ModuleType):
            continue
        try:
            names[name] = encode(value, keep)
        except Exception:
            continue
    send(4, {"ready": True, "names": names})
    requests = Lines(3, 1 << 26)
    while True:
        line = requests.next()
        if line is None:
            return
        try:
            req = json.loads(line)
            op, target = req["op"], decode(req["target"], lookup)
            arg = decode(req.get("arg"), lookup)
            if op == "call":
                result = target(*arg, **decode(req["kwargs"], lookup))
            elif op == "getattr":
                result = getattr(target, arg)
            elif op == "setattr":
                result = setattr(target, arg[0], arg[1])
            elif op == "list":
                result = list(target)
            elif op == "len":
                result = len(target)
            elif op == "getitem":
                result = target[arg]
            elif op == "contains":
                result = arg in target
            elif op == "str":
                result = str(target)
            else:
                raise ValueError("unknown request")
            reply = {"ok": True, "value": encode(result, keep)}
        except BaseException as e:
            reply = {"ok": False, "exc": type(e).__name__, "msg": message(e)}
        send(4, reply)


class ProgramEnded(BaseException):
    """The program closed its end or died: no answer will come. Not an Exception, so that a test's
    `except Exception` cannot swallow it; a run in which it was raised fails even if a bare except did."""


def harness(req_w, resp_r, tests, program_state, describe, max_message):
    import ast
    import builtins

    replies = Lines(resp_r, max_message)

    class ProgramError(Exception):
        """An exception raised in the program that is not one of Python's built-in exceptions."""

    ended = []

    def receive():
        try:
            line = replies.next()
        except ValueError as e:
            raise ProgramError(str(e))
        if line is None:
            ended.append(True)
            raise ProgramEnded()
        return json.loads(line)

    def refuse(self, *_):
        raise TypeError("the program returned a %s object where the tests use a value; only None, bool, "
                        "int, float, str, bytes, list, tuple, dict, set and frozenset cross" % self._type)

    class Remote:
        """An object that stays in the program; the tests may call it and read its attributes only."""
        __slots__ = ("_h", "_type")

        def __init__(self, h, typ):
            object.__setattr__(self, "_h", h)
            object.__setattr__(self, "_type", typ if type(typ) is str else "unknown")

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return rpc("getattr", self, name)

        def __setattr__(self, name, value):
            rpc("setattr", self, (name, value))

        def __call__(self, *args, **kwargs):
            return rpc("call", self, list(args), kwargs)

        def __iter__(self):
            return iter(rpc("list", self))

        def __len__(self):
            return rpc("len", self)

        def __getitem__(self, key):
            return rpc("getitem", self, key)

        def __contains__(self, key):
            return rpc("contains", self, key)

        def __str__(self):
            return rpc("str", self)

        def __repr__(self):
            return "<%s object of the program>" % self._type

        __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __hash__ = refuse

    def as_remote(h, typ):
        return Remote(h, typ)

    def outbound(x):
        if isinstance(x, Remote):
            return {"h": object.__getattribute__(x, "_h")}
        raise TypeError("the tests passed a %s to the program; only plain values cross" % type(x).__name__)

    def rpc(op, target, arg=None, kwargs=None):
        req = {"op": op, "target": outbound(target), "arg": encode(arg, outbound)}
        if kwargs is not None:
            req["kwargs"] = {"d": [[k, encode(v, outbound)] for k, v in kwargs.items()]}
        try:
            send(req_w, req)
        except OSError:
            ended.append(True)
            raise ProgramEnded()
        reply = receive()
        if type(reply) is not dict:
            raise ProgramError("malformed reply")
        if reply.get("ok") is True:
            return decode(reply.get("value"), as_remote)
        exc, msg = reply.get("exc"), reply.get("msg")
        cls = getattr(builtins, exc, None) if type(exc) is str else None
        text = msg if type(msg) is str else ""
        error = None
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                error = cls(text)
            except Exception:
                error = None
        raise error if error is not None else ProgramError("%s: %s" % (exc, text))

    def cut(s, n=80):
        s = " ".join(s.split())
        return s if len(s) <= n else s[:n - 3] + "..."

    def verdict(passed, reason, ran):
        return {"passed": passed, "reason": cut(reason, 120), "statements_run": ran,
                "program": program_state(False)}

    try:
        tree = ast.parse(tests)
    except SyntaxError as e:
        return verdict(False, "the tests do not parse: %s" % e.msg, 0)
    if not any(isinstance(n, ast.Assert) for n in ast.walk(tree)):
        return verdict(False, "the tests contain no assert", 0)
    try:
        hello = receive()
    except ProgramEnded:
        return verdict(False, "the program ended before the tests: it " + describe(program_state(True)), 0)
    except Exception as e:
        return verdict(False, "the program's first message is malformed: %s" % e, 0)
    if type(hello) is not dict or hello.get("ready") is not True or type(hello.get("names")) is not dict:
        exc = hello.get("exc") if type(hello) is dict else None
        return verdict(False, "the program raised %s when imported" % exc if type(exc) is str
                       else "the program's first message is malformed", 0)
    scope = {"__name__": "__tests__", "__builtins__": builtins}
    for name, value in hello["names"].items():
        if type(name) is str and name.isidentifier() and not hasattr(builtins, name):
            try:
                scope[name] = decode(value, as_remote)
            except Exception:
                continue
    for i, stmt in enumerate(tree.body, 1):
        code = compile(ast.Module(body=[stmt], type_ignores=[]), "tests", "exec")
        src = ast.get_source_segment(tests, stmt) or type(stmt).__name__
        try:
            exec(code, scope)
        except ProgramEnded:
            return verdict(False, "the program ended during test %d: it %s" % (i, describe(program_state(True))), i - 1)
        except AssertionError:
            return verdict(False, "test %d failed: %s" % (i, cut(src)), i - 1)
        except BaseException as e:
            return verdict(False, "test %d raised %s: %s" % (i, type(e).__name__, cut(message(e), 60)), i - 1)
    if ended:
        return verdict(False, "the program ended during the tests: it " + describe(program_state(True)), len(tree.body))
    return verdict(True, "correct", len(tree.body))


if __name__ == "__main__":
    serve(sys.argv[1])
