"""Tests of sluice_plugin's header encoding and its handler glue, with plain python3:

    python3 plugins/sdk-python/test_sluice_plugin.py

The generated bindings (``wit_world``, ``componentize_py_types``) exist only inside a component,
so this file puts stand-ins shaped like componentize-py's output for ``sluice:plugin@0.2.0``
(records as dataclasses, ``headers`` as bytes) in ``sys.modules`` before importing the SDK.
What only the gateway can show (the component loads, the host accepts its lists) is checked by
``tests/integration/tests/gateway/plugins_python.rs``.
"""

import os
import random
import sys
import types as _pytypes
import unittest
from dataclasses import dataclass
from enum import Enum, Flag, auto


def _install_bindings() -> _pytypes.SimpleNamespace:
    """Stand-ins for the generated modules; returns the fake host's record of calls."""
    cpt = _pytypes.ModuleType("componentize_py_types")

    @dataclass
    class Ok:
        value: object

    @dataclass(frozen=True)
    class Err(Exception):
        value: object

    cpt.Ok, cpt.Err = Ok, Err

    wt = _pytypes.ModuleType("wit_world.imports.types")

    @dataclass
    class Request:
        method: str
        url: str
        headers: bytes
        body: bytes

    @dataclass
    class Response:
        status: int
        headers: bytes
        body: bytes

    class ErrorKind(Enum):
        CONNECT = 0
        TIMEOUT = 1
        PROTOCOL = 2
        BODY_TOO_LARGE = 3
        HOST_NOT_ALLOWED = 4
        PLUGIN = 5
        OTHER = 6

    @dataclass
    class Error:
        kind: ErrorKind
        message: str

    @dataclass
    class RequestOrResponse_Request:
        value: Request

    @dataclass
    class RequestOrResponse_Response:
        value: Response

    class HookSet(Flag):
        ON_REQUEST = auto()
        ON_RESPONSE = auto()

    class Level(Enum):
        TRACE = 0
        DEBUG = 1
        INFO = 2
        WARN = 3
        ERROR = 4

    for cls in (Request, Response, ErrorKind, Error, RequestOrResponse_Request,
                RequestOrResponse_Response, HookSet, Level):
        setattr(wt, cls.__name__, cls)

    calls = _pytypes.SimpleNamespace(sent=[], answer=None, logs=[])
    host = _pytypes.ModuleType("wit_world.imports.host")

    def send(request):
        calls.sent.append(request)
        if isinstance(calls.answer, Exception):
            raise calls.answer
        return calls.answer

    host.send = send
    host.log = lambda level, message: calls.logs.append((level, message))

    exports = _pytypes.ModuleType("wit_world.exports")
    exports.Handler = type("Handler", (), {})
    imports = _pytypes.ModuleType("wit_world.imports")
    imports.host, imports.types = host, wt
    world = _pytypes.ModuleType("wit_world")
    world.exports, world.imports = exports, imports
    sys.modules.update({
        "componentize_py_types": cpt,
        "wit_world": world,
        "wit_world.exports": exports,
        "wit_world.imports": imports,
        "wit_world.imports.host": host,
        "wit_world.imports.types": wt,
    })
    return calls


CALLS = _install_bindings()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_plugin as sp  # noqa: E402
from componentize_py_types import Err  # noqa: E402
from wit_world.imports import types as wit  # noqa: E402

URL = "http://127.0.0.1:8080/p?q=1"
RAW = b"a:1\nb:2\na:3\n"


def incoming(headers: bytes = RAW) -> sp.Request:
    """A request as the handler export builds it from the host's record."""
    return sp._from_wit_request(wit.Request("GET", URL, headers, b""))


def wire(message) -> bytes:
    """The encoded headers a message crosses the boundary with."""
    if isinstance(message, sp.Request):
        return sp._to_wit_request(message).headers
    return sp._to_wit_response(message).headers


class Decoding(unittest.TestCase):
    def test_the_list_of_pairs(self):
        self.assertEqual(incoming().headers, [("a", b"1"), ("b", b"2"), ("a", b"3")])
        self.assertEqual(incoming(b"").headers, [])
        # Only the first `:` separates: values keep theirs, and may be empty.
        self.assertEqual(
            incoming(b"x:a:b\ny:\n").headers, [("x", b"a:b"), ("y", b"")]
        )

    def test_reads_on_the_encoded_list(self):
        r = incoming()
        self.assertEqual(r.header("a"), "1")
        self.assertEqual(r.header_bytes("B"), b"2")  # names match whatever their case
        self.assertEqual(list(r.header_all("a")), [b"1", b"3"])
        self.assertIsNone(r.header("c"))
        self.assertEqual(list(r.header_all("c")), [])
        # A name that is the tail of another, or a value that looks like a field, is no match.
        r = incoming(b"x-a:1\nk:a:2\nA:4\n")
        self.assertEqual(list(r.header_all("a")), [b"4"])
        self.assertIsNone(r.header("k:a"))  # no field can have that name
        self.assertIsNone(incoming(b"a:1").header("b"))
        self.assertEqual(incoming(b"a:1").header("a"), "1")  # a last field without LF
        self.assertEqual(repr(incoming()), f"Request('GET', {URL!r}, 3 headers, 0 bytes)")


class Changes(unittest.TestCase):
    def both(self):
        """The same fields held encoded (as from the host) and as a list (as a plugin built)."""
        return incoming(), sp.Request("GET", URL, [("a", b"1"), ("b", b"2"), ("a", b"3")])

    def test_set_replaces_every_value_and_goes_last(self):
        for r in self.both():
            r.set_header("A", "x")
            self.assertEqual(wire(r), b"b:2\na:x\n")
            self.assertEqual(r.header("a"), "x")

    def test_append_keeps_the_others(self):
        for r in self.both():
            r.append_header("B", b"4")
            self.assertEqual(wire(r), b"a:1\nb:2\na:3\nb:4\n")
            self.assertEqual(list(r.header_all("b")), [b"2", b"4"])

    def test_remove(self):
        for r in self.both():
            r.remove_header("a")
            self.assertEqual(wire(r), b"b:2\n")
            r.remove_header("b")
            self.assertEqual(wire(r), b"")
        r = incoming(b"a:1\na:2\nb:3\na:4")  # repeated, adjacent, and last without LF
        r.remove_header("A")
        self.assertEqual(wire(r), b"b:3\n")

    def test_the_encoded_list_agrees_with_the_list_of_pairs(self):
        # Random edits on both forms; the list's (the 0.1 SDK's) behaviour is the reference.
        rng = random.Random(7)
        names = ["a", "A", "b", "x-a", "a-x", "set-cookie"]
        for _ in range(300):
            pairs = [(rng.choice(names).lower(), b"v%d" % i) for i in range(rng.randrange(6))]
            raw, listed = incoming(sp._encode(pairs)), sp.Request("GET", URL, list(pairs))
            for step in range(4):
                op, name, value = rng.randrange(4), rng.choice(names), b"w%d" % step
                for r in (raw, listed):
                    if op == 0:
                        r.set_header(name, value)
                    elif op == 1:
                        r.append_header(name, value)
                    elif op == 2:
                        r.remove_header(name)
                for n in names:
                    self.assertEqual(raw.header_bytes(n), listed.header_bytes(n))
                    self.assertEqual(list(raw.header_all(n)), list(listed.header_all(n)))
            self.assertEqual(wire(raw), wire(listed))

    def test_the_list_may_be_changed_in_place(self):
        r = incoming()
        r.headers.append(("C", "3"))
        r.headers[0] = ("a", b"0")
        self.assertEqual(wire(r), b"a:0\nb:2\na:3\nC:3\n")
        r.headers = [("x", b"y")]
        self.assertEqual(wire(r), b"x:y\n")
        self.assertEqual(wire(sp.Response(200)), b"")

    def test_from_json(self):
        response = sp.Response.from_json(201, {"ok": True})
        self.assertEqual(response.header("Content-Type"), "application/json")
        self.assertEqual(wire(response), b"content-type:application/json\n")
        self.assertEqual(response.json(), {"ok": True})


class Untouched(unittest.TestCase):
    """A hook that changes no header hands the host back the very bytes object it got."""

    def test_pass_through(self):
        raw = bytes(RAW)  # its own object
        handler = sp.export(type("P", (sp.Plugin,), {}))()
        handler.init("{}")
        out = handler.on_request(wit.Request("GET", URL, raw, b""))
        self.assertIs(out.value.headers, raw)
        answer = wit.Response(200, raw, b"body")
        self.assertIs(handler.on_response(answer).headers, raw)

    def test_reads_and_removing_an_absent_header_change_nothing(self):
        r = incoming()
        r.header("a")
        list(r.header_all("b"))
        r.remove_header("cookie")
        self.assertIs(wire(r), RAW)

    def test_send_passes_them_on_and_answers_with_the_hosts(self):
        r = incoming()
        CALLS.answer = wit.Response(200, b"x-origin:yes\n", b"{}")
        answer = sp.send(r)
        self.assertIs(CALLS.sent[-1].headers, RAW)
        self.assertEqual(answer.header("x-origin"), "yes")
        self.assertIs(wire(answer), CALLS.answer.headers)
        CALLS.answer = Err(wit.Error(wit.ErrorKind.HOST_NOT_ALLOWED, "no"))
        with self.assertRaises(sp.PluginError) as caught:
            sp.send(r)
        self.assertEqual(caught.exception.kind, sp.ErrorKind.HOST_NOT_ALLOWED)


class Refused(unittest.TestCase):
    """What would make the list ambiguous is refused as the plugin's error."""

    BAD = [("a:b", "v"), ("a\nb", "v"), ("a\rb", "v"), ("a", "x\ny"), ("a", b"x\ry")]

    def test_by_the_helpers(self):
        for name, value in self.BAD:
            for r in Changes.both(None):
                for change in (r.set_header, r.append_header):
                    with self.assertRaises(sp.PluginError, msg=(name, value)) as caught:
                        change(name, value)
                    self.assertEqual(caught.exception.kind, sp.ErrorKind.PLUGIN)
                self.assertEqual(r.header_bytes("a"), b"1")  # nothing changed

    def test_in_a_list(self):
        for name, value in self.BAD:
            r = sp.Request("GET", URL, [("ok", b"1"), (name, value)])
            with self.assertRaises(sp.PluginError, msg=(name, value)) as caught:
                wire(r)
            self.assertIn(repr(name), caught.exception.message)
        with self.assertRaises(TypeError):
            wire(sp.Request("GET", URL, [(b"bytes-name", b"v")]))

    def test_through_the_handler(self):
        class Bad(sp.Plugin):
            HOOKS = sp.Hooks.ON_REQUEST

            def on_request(self, request):
                request.headers.append(("x", b"a\nforged:1"))
                return request

        handler = sp.export(Bad)()
        handler.init("{}")
        with self.assertRaises(Err) as caught:
            handler.on_request(wit.Request("GET", URL, RAW, b""))
        self.assertEqual(caught.exception.value.kind, sp.ErrorKind.PLUGIN)
        self.assertIn("CR or LF", caught.exception.value.message)


if __name__ == "__main__":
    unittest.main()
