"""Write Sluice HTTP client plugins in Python, for the fast ``sluice:plugin/http-client`` world.

A plugin is a WebAssembly component built with componentize-py against ``wit/plugin.wit``
(package ``sluice:plugin@0.2.0``, world ``http-client``). The gateway hands it the request it is
about to send to a backend and the plugin answers it, itself or by calling hosts through the
gateway (:func:`send`), or, in hooks mode, changes the request and the answer while the gateway
makes the call itself.

``app.py``::

    import sluice_plugin as sp

    class Hello(sp.Plugin):
        def __init__(self, settings):
            self.path = settings.get("path", "/hello")

        def handle(self, request):
            if request.path == self.path:
                return sp.Response.from_json(200, {"hello": True})
            sp.log.debug("passing through")
            return sp.send(request)

    Handler = sp.export(Hello)  # componentize-py looks for `Handler` in the app module

Two ways to serve a request (the WIT's ``hooks`` export):

- **handle** (``HOOKS = Hooks(0)``, the default): :meth:`Plugin.handle` runs for the whole
  request and makes any calls itself with :func:`send`; the gateway holds one instance per
  request in flight.
- **hooks**: set ``HOOKS = Hooks.ON_REQUEST`` (or ``Hooks.ON_REQUEST | Hooks.ON_RESPONSE``), and
  override :meth:`Plugin.on_request` (return the request, changed or not, or a
  :class:`Response` to answer right away) and/or :meth:`Plugin.on_response`. The gateway makes
  the backend call between them without holding an instance: the fastest shape.

Errors, as the WIT has them:

- ``__init__`` raising anything rejects the settings: the message stops the gateway's start-up.
- A request hook raising :class:`PluginError` fails that request with its ``kind`` and
  ``message``; an error :func:`send` raised (a :class:`PluginError` with the host's kind, such
  as ``ErrorKind.HOST_NOT_ALLOWED``) may be let through unchanged and the gateway treats it as
  an upstream error of that kind. Any other exception is ``ErrorKind.PLUGIN`` with
  ``"<ExceptionType>: <text>"``.

Instances are long-lived and reused, one request at a time: never rely on state surviving (an
instance may be replaced at any time) nor being shared between instances.

Headers cross the boundary as one encoded byte list (``name:value\n`` per field). A message
keeps those bytes and the header helpers work on them directly, so a hook that changes no header
hands the host back the very bytes it got; reading ``request.headers`` (the list of pairs) decodes
them once and the list is encoded again on the way out. A name with ``:``, CR or LF, or a value
with CR or LF, cannot be encoded: setting one raises :class:`PluginError`.

Imports: componentize-py snapshots the interpreter once ``app.py`` is imported, and a module
first imported while serving a request is not found then (``ModuleNotFoundError``, a 500).
Import what the plugin uses at the top of ``app.py``, and call once at import time anything that
imports lazily (``hmac`` does: see ``plugins/py-hmac-signer``).
"""

import json as _json
from typing import Any, Iterator, List, Optional, Tuple, Type, Union

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import host as _host
from wit_world.imports import types as _types

__all__ = [
    "Error",
    "ErrorKind",
    "Headers",
    "Hooks",
    "Level",
    "Plugin",
    "PluginError",
    "Request",
    "Response",
    "export",
    "log",
    "send",
]

#: Which hooks the gateway calls: ``Hooks.ON_REQUEST``, ``Hooks.ON_RESPONSE``, both with ``|``,
#: or ``Hooks(0)`` for none (handle mode).
Hooks = _types.HookSet
#: The error kinds of the WIT (``CONNECT``, ``TIMEOUT``, ``PROTOCOL``, ``BODY_TOO_LARGE``,
#: ``HOST_NOT_ALLOWED``, ``PLUGIN``, ``OTHER``).
ErrorKind = _types.ErrorKind
#: Log levels (``TRACE`` .. ``ERROR``).
Level = _types.Level
#: The WIT's error record (kind + message), as the host sees it.
Error = _types.Error

#: Header fields as a plugin sees them in ``request.headers``: (name, value) pairs in order,
#: names may repeat. Names from the host are lower-case.
Headers = List[Tuple[str, bytes]]

Value = Union[str, bytes]


def _bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected str or bytes, got {type(value).__name__}")


class PluginError(Exception):
    """A failed request: ``kind`` (an :data:`ErrorKind`, ``PLUGIN`` by default) and ``message``
    (shown to clients only with ``router.return_error_msg``). :func:`send` raises it with the
    host's kind."""

    def __init__(self, message: str, kind: "ErrorKind" = ErrorKind.PLUGIN) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"PluginError({self.message!r}, {self.kind})"


# --- the encoded header list ---------------------------------------------------------------
# The WIT's `headers`: each field is `name:value\n`, no spaces, no CR. A name never holds `:`
# and nothing holds LF, so `\nname:` in b"\n" + list finds exactly the fields named `name`: the
# helpers below look fields up and edit the list with bytes.find and join, never decoding the
# fields they do not touch. Names surrogate-escape so that any byte round-trips.


def _name(name: str) -> bytes:
    """A header name as the helpers store it (lower-case, encoded); refused when it would make
    the list ambiguous."""
    if not isinstance(name, str):
        raise TypeError(f"a header name must be str, got {type(name).__name__}")
    if ":" in name or "\n" in name or "\r" in name:
        raise PluginError(f"invalid header name {name!r}: it cannot contain ':', CR or LF")
    return name.lower().encode(errors="surrogateescape")


def _value(name: str, value: Value) -> bytes:
    value = value if type(value) is bytes else _bytes(value)
    if b"\n" in value or b"\r" in value:
        raise PluginError(f"invalid value for header {name!r}: it cannot contain CR or LF")
    return value


def _key(name: str) -> Optional[bytes]:
    """What starts a field named ``name`` in ``b"\\n" + list``, lower-case; None for a name no
    field can have (a look-up of it finds nothing)."""
    if ":" in name or "\n" in name or "\r" in name:
        return None
    return b"\n" + name.lower().encode(errors="surrogateescape") + b":"


def _first(raw: bytes, key: Optional[bytes]) -> Optional[bytes]:
    if key is None:
        return None
    # Lower-cased only to find names whatever their case; values are sliced from `raw`.
    at = (b"\n" + raw).lower().find(key)
    if at < 0:
        return None
    start = at + len(key) - 1  # `at` in b"\n" + raw is where the field starts in raw
    end = raw.find(b"\n", start)
    return raw[start:] if end < 0 else raw[start:end]


def _values(raw: bytes, key: Optional[bytes]) -> List[bytes]:
    values: List[bytes] = []
    if key is None:
        return values
    hay = (b"\n" + raw).lower()
    at = hay.find(key)
    while at >= 0:
        start = at + len(key) - 1
        end = raw.find(b"\n", start)
        if end < 0:  # a last field without LF
            values.append(raw[start:])
            break
        values.append(raw[start:end])
        at = hay.find(key, end + 1)  # hay[end + 1] is the LF that ends this field
    return values


def _without(raw: bytes, key: Optional[bytes], field: bytes = b"") -> bytes:
    """``raw`` without the fields ``key`` names, plus ``field``; ``raw`` itself when that
    changes nothing."""
    if key is None:
        return raw
    hay = (b"\n" + raw).lower()
    at = hay.find(key)
    if at < 0:
        return raw + field if field else raw
    skip = len(key) - 1
    pieces = []
    last = 0
    while at >= 0:
        pieces.append(raw[last:at])
        last = raw.find(b"\n", at + skip) + 1 or len(raw)  # a last field without LF ends there
        at = hay.find(key, last)
    pieces.append(raw[last:])
    pieces.append(field)
    return b"".join(pieces)


def _decode(raw: bytes) -> Headers:
    fields = raw.split(b"\n")
    if fields[-1] == b"":
        del fields[-1]
    out = []
    for f in fields:
        name, _, value = f.partition(b":")
        out.append((name.decode(errors="surrogateescape"), value))
    return out


def _encode(headers: Headers) -> bytes:
    """The encoded list of ``headers`` (names as they are), or :class:`PluginError` when a field
    cannot be encoded."""
    parts = []
    for name, value in headers:
        if not isinstance(name, str):
            raise TypeError(f"a header name must be str, got {type(name).__name__}")
        parts.append(name.encode(errors="surrogateescape"))
        parts.append(value if type(value) is bytes else _bytes(value))
    raw = b"%s:%s\n" * (len(parts) // 2) % tuple(parts)
    # Checked once over the whole list: one LF per field, no CR, no `:` in a name.
    if raw.count(b"\n") * 2 != len(parts) or b"\r" in raw or b":" in b"".join(parts[0::2]):
        for name, value in headers:
            _name(name)  # raises for the first field that cannot be encoded
            _value(name, value)
    return raw


class _HeaderMethods:
    """Header and body helpers shared by :class:`Request` and :class:`Response`. Names match
    case-insensitively; names set through these helpers are stored lower-case.

    The headers are held either encoded (``_raw``, as the host sent them or as the helpers
    edited them) or as a list of pairs (``_list``: given to the constructor, assigned, or decoded
    when ``headers`` was read). A list may be changed in place behind the helpers' back, so once
    there is one it is the truth, and it is encoded on the way out."""

    __slots__ = ()
    _raw: Optional[bytes]
    _list: Optional[Headers]
    body: bytes

    @property
    def headers(self) -> Headers:
        """The header fields as a list of (name, bytes) pairs, decoded on first use; change it
        in place or assign a new list."""
        if self._list is None:
            self._list = _decode(self._raw)
            self._raw = None
        return self._list

    @headers.setter
    def headers(self, headers: Headers) -> None:
        self._list = headers
        self._raw = None

    def _wire_headers(self) -> bytes:
        return self._raw if self._list is None else _encode(self._list)

    def _header_count(self) -> int:
        return self._raw.count(b"\n") if self._list is None else len(self._list)

    def header_bytes(self, name: str) -> Optional[bytes]:
        """The first value of header ``name``, or None."""
        if self._list is None:
            return _first(self._raw, _key(name))
        name = name.lower()
        for n, v in self._list:
            if n.lower() == name:
                return v
        return None

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` as text (UTF-8, undecodable bytes replaced)."""
        value = self.header_bytes(name)
        return None if value is None else value.decode(errors="replace")

    def header_all(self, name: str) -> Iterator[bytes]:
        """Every value of header ``name``, in order."""
        if self._list is None:
            return iter(_values(self._raw, _key(name)))
        name = name.lower()
        return (v for n, v in self._list if n.lower() == name)

    def set_header(self, name: str, value: Value) -> None:
        """Replaces every value of header ``name`` with ``value``."""
        lname = _name(name)
        value = _value(name, value)
        if self._list is None:
            self._raw = _without(self._raw, b"\n%s:" % lname, b"%s:%s\n" % (lname, value))
        else:
            self.remove_header(name)
            self._list.append((name.lower(), value))

    def append_header(self, name: str, value: Value) -> None:
        """Adds a value to header ``name``, keeping the others."""
        lname = _name(name)
        value = _value(name, value)
        if self._list is None:
            self._raw += b"%s:%s\n" % (lname, value)
        else:
            self._list.append((name.lower(), value))

    def remove_header(self, name: str) -> None:
        """Removes header ``name``."""
        if self._list is None:
            self._raw = _without(self._raw, _key(name))
        else:
            name = name.lower()
            self._list = [(n, v) for n, v in self._list if n.lower() != name]

    def with_header(self, name: str, value: Value):
        """:meth:`set_header`, returning ``self`` for building."""
        self.set_header(name, value)
        return self

    def with_body(self, body: Value):
        """Replaces the body (``str`` is encoded as UTF-8), returning ``self``."""
        self.body = _bytes(body)
        return self

    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not)."""
        return _json.loads(self.body)


def _split_url(url: str) -> Tuple[str, str]:
    """(``scheme://authority``, the rest from the path on)."""
    at = url.find("://")
    if at < 0:
        return "", url
    start = at + 3
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, start)
        if 0 <= i < end:
            end = i
    return url[:end], url[end:]


class Request(_HeaderMethods):
    """A backend request: ``method``, absolute ``url``, ``headers`` (:data:`Headers`), ``body``."""

    __slots__ = ("method", "url", "_raw", "_list", "body")

    def __init__(
        self, method: str, url: str, headers: Optional[Headers] = None, body: Value = b""
    ) -> None:
        self.method = method
        self.url = url
        self._raw = b"" if headers is None else None
        self._list = headers
        self.body = _bytes(body)

    @property
    def origin(self) -> str:
        """``scheme://authority`` of the URL (empty when the URL is not absolute)."""
        return _split_url(self.url)[0]

    @property
    def path_and_query(self) -> str:
        """The request target: the path plus ``?query`` when there is one (``/`` if empty)."""
        rest = _split_url(self.url)[1].split("#", 1)[0]
        return rest or "/"

    @property
    def path(self) -> str:
        """The path, without the query (``/`` if empty)."""
        return self.path_and_query.split("?", 1)[0] or "/"

    @property
    def query(self) -> Optional[str]:
        """The query without ``?``, or None."""
        parts = self.path_and_query.split("?", 1)
        return parts[1] if len(parts) == 2 else None

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.url!r}, {self._header_count()} headers, {len(self.body)} bytes)"


class Response(_HeaderMethods):
    """A response: ``status``, ``headers`` (:data:`Headers`), ``body`` (fully buffered)."""

    __slots__ = ("status", "_raw", "_list", "body")

    def __init__(self, status: int, headers: Optional[Headers] = None, body: Value = b"") -> None:
        self.status = status
        self._raw = b"" if headers is None else None
        self._list = headers
        self.body = _bytes(body)

    @classmethod
    def from_json(cls, status: int, value: Any) -> "Response":
        """A response with ``value`` as compact JSON and ``content-type: application/json``."""
        body = _json.dumps(value, separators=(",", ":"))
        response = cls(status, None, body)
        response._raw = b"content-type:application/json\n"
        return response

    def __repr__(self) -> str:
        return f"Response({self.status}, {self._header_count()} headers, {len(self.body)} bytes)"


# --- crossing the boundary ----------------------------------------------------------------


def _from_wit_request(request: "_types.Request") -> Request:
    # The host's encoded headers are kept as they are: decoded only if the plugin reads the list.
    r = Request.__new__(Request)
    r.method = request.method
    r.url = request.url
    r._raw = request.headers
    r._list = None
    r.body = request.body
    return r


def _from_wit_response(response: "_types.Response") -> Response:
    r = Response.__new__(Response)
    r.status = response.status
    r._raw = response.headers
    r._list = None
    r.body = response.body
    return r


def _to_wit_request(request: Request) -> "_types.Request":
    return _types.Request(
        request.method, request.url, request._wire_headers(), _bytes(request.body)
    )


def _to_wit_response(response: Response) -> "_types.Response":
    return _types.Response(
        int(response.status), response._wire_headers(), _bytes(response.body)
    )


def send(request: Request) -> Response:
    """Makes an HTTP call through the gateway's pooled client. Only hosts in the plugin's
    ``allowed_hosts`` (by default the backend's own hosts) are reachable, within the request's
    remaining deadline. Raises :class:`PluginError` with the host's kind (for instance
    ``ErrorKind.HOST_NOT_ALLOWED``); not available during ``__init__``."""
    try:
        answer = _host.send(_to_wit_request(request))
    except Err as e:
        raise PluginError(e.value.message, e.value.kind) from None
    return _from_wit_response(answer)


class _Log:
    """Log lines through the gateway (target ``sluice::plugin``, tagged with the plugin's name):
    ``log.info("...")``, or ``log(Level.WARN, "...")``."""

    def __call__(self, level: "Level", message: str) -> None:
        _host.log(level, str(message))

    def trace(self, message: str) -> None:
        _host.log(Level.TRACE, str(message))

    def debug(self, message: str) -> None:
        _host.log(Level.DEBUG, str(message))

    def info(self, message: str) -> None:
        _host.log(Level.INFO, str(message))

    def warn(self, message: str) -> None:
        _host.log(Level.WARN, str(message))

    def error(self, message: str) -> None:
        _host.log(Level.ERROR, str(message))


log = _Log()


class Plugin:
    """Subclass it, then ``Handler = export(YourPlugin)`` in ``app.py``. One object lives in
    each instance, made by ``__init__`` from the settings."""

    #: The hooks the gateway calls instead of :meth:`handle`; ``Hooks(0)`` (handle mode) unless
    #: a subclass says otherwise.
    HOOKS: "Hooks" = Hooks(0)

    def __init__(self, settings: Any) -> None:
        """Validates the settings (the decoded JSON under the plugin's name in the backend's
        ``plugin/http-client`` block, ``{}`` when absent) and keeps what the requests need.
        Raising anything stops the gateway's start-up with its message."""

    def hooks(self) -> "Hooks":
        """The hooks of this instance, asked once after ``__init__`` (so they may depend on the
        settings). Defaults to :attr:`HOOKS`."""
        return type(self).HOOKS

    def handle(self, request: Request) -> Response:
        """Answers one backend request. The default runs the hooks around :func:`send`, so a
        hooks plugin behaves the same whichever way it is called."""
        flow = self.on_request(request)
        if isinstance(flow, Response):
            return flow
        return self.on_response(send(flow))

    def on_request(self, request: Request) -> Union[Request, Response]:
        """Returns the request to send (changed or not), or a :class:`Response` to answer the
        client without calling the backend."""
        return request

    def on_response(self, response: Response) -> Response:
        """Changes the backend's answer on its way back."""
        return response


def _failure(exc: BaseException) -> Err:
    if isinstance(exc, PluginError):
        return Err(_types.Error(exc.kind, exc.message))
    return Err(_types.Error(ErrorKind.PLUGIN, f"{type(exc).__name__}: {exc}"))


def export(plugin_class: Type[Plugin]) -> type:
    """The class componentize-py exports as the ``handler`` interface, serving
    ``plugin_class``. Assign it to ``Handler`` at the top level of the app module."""
    if not (isinstance(plugin_class, type) and issubclass(plugin_class, Plugin)):
        raise TypeError("export() takes a subclass of sluice_plugin.Plugin")
    # One plugin object per instance (componentize-py may make a Handler per call).
    state: List[Plugin] = []

    def plugin() -> Plugin:
        if not state:
            raise Err(_types.Error(ErrorKind.PLUGIN, "the plugin was not initialised"))
        return state[0]

    class Handler(_exports.Handler):
        def init(self, settings: str) -> None:
            if state:
                raise Err("init was called twice on the same instance")
            try:
                parsed = _json.loads(settings)
            except ValueError as e:
                raise Err(f"invalid settings: {e}") from None
            try:
                state.append(plugin_class(parsed))
            except PluginError as e:
                raise Err(e.message) from None
            except Exception as e:  # every failure is a start-up error, never a trap
                raise Err(str(e) or type(e).__name__) from None

        def hooks(self) -> "Hooks":
            if not state:
                return plugin_class.HOOKS
            try:
                return Hooks(state[0].hooks())
            except Exception:
                return plugin_class.HOOKS

        def handle(self, request: "_types.Request") -> "_types.Response":
            p = plugin()
            try:
                answer = p.handle(_from_wit_request(request))
                if not isinstance(answer, Response):
                    raise TypeError(f"handle returned {type(answer).__name__}, not a Response")
                return _to_wit_response(answer)
            except Exception as e:
                raise _failure(e) from None

        def on_request(self, request: "_types.Request") -> "_types.RequestOrResponse":
            p = plugin()
            try:
                flow = p.on_request(_from_wit_request(request))
                if isinstance(flow, Request):
                    return _types.RequestOrResponse_Request(_to_wit_request(flow))
                if isinstance(flow, Response):
                    return _types.RequestOrResponse_Response(_to_wit_response(flow))
                raise TypeError(
                    f"on_request returned {type(flow).__name__}, not a Request or a Response"
                )
            except Exception as e:
                raise _failure(e) from None

        def on_response(self, response: "_types.Response") -> "_types.Response":
            p = plugin()
            try:
                answer = p.on_response(_from_wit_response(response))
                if not isinstance(answer, Response):
                    raise TypeError(f"on_response returned {type(answer).__name__}, not a Response")
                return _to_wit_response(answer)
            except Exception as e:
                raise _failure(e) from None

    Handler.__name__ = Handler.__qualname__ = "Handler"
    Handler.__doc__ = f"The handler export serving {plugin_class.__name__}."
    return Handler
