"""Write Sluice HTTP client plugins in Python, for the fast ``sluice:plugin/http-client`` world.

A plugin is a WebAssembly component built with componentize-py against ``wit/plugin.wit``
(package ``sluice:plugin@0.1.0``, world ``http-client``). The gateway hands it the request it is
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

#: Header fields as they cross the boundary: (name, value) pairs in order, names may repeat.
#: Names from the host are lower-case.
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


class _HeaderMethods:
    """Header and body helpers shared by :class:`Request` and :class:`Response`. Names match
    case-insensitively; names set through these helpers are stored lower-case."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def header_bytes(self, name: str) -> Optional[bytes]:
        """The first value of header ``name``, or None."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` as text (UTF-8, undecodable bytes replaced)."""
        value = self.header_bytes(name)
        return None if value is None else value.decode(errors="replace")

    def header_all(self, name: str) -> Iterator[bytes]:
        """Every value of header ``name``, in order."""
        name = name.lower()
        return (v for n, v in self.headers if n.lower() == name)

    def set_header(self, name: str, value: Value) -> None:
        """Replaces every value of header ``name`` with ``value``."""
        self.remove_header(name)
        self.headers.append((name.lower(), _bytes(value)))

    def append_header(self, name: str, value: Value) -> None:
        """Adds a value to header ``name``, keeping the others."""
        self.headers.append((name.lower(), _bytes(value)))

    def remove_header(self, name: str) -> None:
        """Removes header ``name``."""
        name = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != name]

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

    __slots__ = ("method", "url", "headers", "body")

    def __init__(
        self, method: str, url: str, headers: Optional[Headers] = None, body: Value = b""
    ) -> None:
        self.method = method
        self.url = url
        self.headers = [] if headers is None else headers
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
        return f"Request({self.method!r}, {self.url!r}, {len(self.headers)} headers, {len(self.body)} bytes)"


class Response(_HeaderMethods):
    """A response: ``status``, ``headers`` (:data:`Headers`), ``body`` (fully buffered)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Optional[Headers] = None, body: Value = b"") -> None:
        self.status = status
        self.headers = [] if headers is None else headers
        self.body = _bytes(body)

    @classmethod
    def from_json(cls, status: int, value: Any) -> "Response":
        """A response with ``value`` as compact JSON and ``content-type: application/json``."""
        body = _json.dumps(value, separators=(",", ":"))
        return cls(status, [("content-type", b"application/json")], body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.headers)} headers, {len(self.body)} bytes)"


# --- crossing the boundary ----------------------------------------------------------------


def _wire_headers(headers: Headers) -> Headers:
    out = []
    for name, value in headers:
        if not isinstance(name, str):
            raise TypeError(f"a header name must be str, got {type(name).__name__}")
        out.append((name, value if type(value) is bytes else _bytes(value)))
    return out


def _to_wit_request(request: Request) -> "_types.Request":
    return _types.Request(
        request.method, request.url, _wire_headers(request.headers), _bytes(request.body)
    )


def _to_wit_response(response: Response) -> "_types.Response":
    return _types.Response(
        int(response.status), _wire_headers(response.headers), _bytes(response.body)
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
    return Response(answer.status, answer.headers, answer.body)


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
                answer = p.handle(Request(request.method, request.url, request.headers, request.body))
                if not isinstance(answer, Response):
                    raise TypeError(f"handle returned {type(answer).__name__}, not a Response")
                return _to_wit_response(answer)
            except Exception as e:
                raise _failure(e) from None

        def on_request(self, request: "_types.Request") -> "_types.RequestOrResponse":
            p = plugin()
            try:
                flow = p.on_request(Request(request.method, request.url, request.headers, request.body))
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
                answer = p.on_response(Response(response.status, response.headers, response.body))
                if not isinstance(answer, Response):
                    raise TypeError(f"on_response returned {type(answer).__name__}, not a Response")
                return _to_wit_response(answer)
            except Exception as e:
                raise _failure(e) from None

    Handler.__name__ = Handler.__qualname__ = "Handler"
    Handler.__doc__ = f"The handler export serving {plugin_class.__name__}."
    return Handler
