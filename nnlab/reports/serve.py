"""`nnlab serve`: a live dashboard of a runs folder on 127.0.0.1.

The page is report.html's Explore section for whichever run or sweep is chosen from the
folder's listing, drawn by the very scripts the report inlines (report.js, panels.js) plus
dashboard.js, which fetches the data from the JSON endpoints below and fetches it again every
two seconds, so that new runs and jobs appear and curves grow as metrics.csv rows are
written (nnlab.reports.live reads it: the listing through the runs index, a folder's data
only when its files changed). Everything is served from the package: the page loads nothing
from elsewhere (its Content-Security-Policy allows only this server).

    GET /                          the page
    GET /static/<script>.js        report.js, panels.js, dashboard.js
    GET /api/runs[?since=V]        the listing: {"version", "runs": [...], "notes"}
    GET /api/folder?path=REL[&since=V]   a run's or sweep's view (nnlab.reports.live)

An answer whose version is ``since`` still is ``{"version": V, "unchanged": true}``.

HTTP is Werkzeug's (its routing, requests and responses, and its threaded development
server bound to the loopback interface only): a dependency of TensorBoard already, so it adds
nothing to install.
"""

from __future__ import annotations

import errno
import html
import json
import socket
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from nnlab.errors import NnlabError
from nnlab.reports.explore import HINT
from nnlab.reports.explore import STYLE as EXPLORE_STYLE
from nnlab.reports.live import Folders, Listing
from nnlab.reports.report import STYLE as REPORT_STYLE

HOST = "127.0.0.1"  # never another interface: the folders' configs and errors stay local
DEFAULT_PORT = 8750
POLL_MS = 2000
SCRIPTS = ("report.js", "panels.js", "dashboard.js")  # in this order (nnlab.reports)
POLICY = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src data:; "
          "style-src 'unsafe-inline'")  # fmt: skip
STYLE = """body{max-width:80rem}#runs-box{max-height:22rem;overflow:auto;border:1px solid #ddd}
#runs-box table{margin:0;display:table;width:100%}#runs tbody tr{cursor:pointer}
#runs tbody tr:hover{background:#f3f7fc}#runs tbody tr.chosen{background:#dbe8f7}
#runs td,#runs th{text-align:left}.st.running{color:#2b6cb0;font-weight:600}.st.failed,.st.diverged,
.st.interrupted{color:#b00}#status{color:#b00}#notes,#list-notes{white-space:pre-line;color:#b00;
font-size:.85rem}#find{margin:.4rem 0}"""


def page(root: Path) -> str:
    """The dashboard: the listing, the Explore section's hosts (report.html's), the scripts."""
    esc = html.escape
    scripts = "".join(f'<script src="/static/{name}"></script>' for name in SCRIPTS)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>nnlab serve: {esc(str(root))}</title>"
        f"<style>{REPORT_STYLE}{EXPLORE_STYLE}{STYLE}</style></head>"
        f'<body data-poll="{POLL_MS}"><h1>nnlab: {esc(str(root))}</h1>'
        '<p class="hint">Live: new runs and jobs appear and curves grow as they are written. '
        'Choose a run or a sweep.</p><p id="status" role="status"></p>'
        '<label>Find <input type="search" id="find" size="30"></label> <span id="count"></span>'
        '<div id="runs-box"><table id="runs"><thead><tr><th>started</th><th>name</th>'
        "<th>kind</th><th>status</th><th>time</th><th>results</th></tr></thead><tbody></tbody>"
        '</table></div><p id="list-notes"></p>'
        f'<section id="explore" hidden><h2 id="title"></h2><p class="hint">{HINT}</p>'
        '<div id="controls"></div><div id="charts"></div><div id="stats"></div>'
        '<p id="notes"></p><div id="parallel"></div><div id="jobs"></div></section>'
        f'<div id="tip" role="tooltip" hidden></div>{scripts}</body></html>'
    )


def _json(body: Any, status: int = 200) -> Response:
    text = json.dumps(body, allow_nan=False)
    return Response(text, status, mimetype="application/json", headers={"Cache-Control":
                                                                         "no-store"})  # fmt: skip


class Dashboard:
    """The WSGI application over one runs folder."""

    def __init__(self, root: Path):
        self.root = root
        self.folders = Folders(root)
        self.listing = Listing(root)
        self.urls = Map([
            Rule("/", endpoint="page"),
            Rule("/static/<name>", endpoint="static"),
            Rule("/api/runs", endpoint="runs"),
            Rule("/api/folder", endpoint="folder"),
        ])  # fmt: skip

    def page(self, request: Request) -> Response:
        return Response(page(self.root), mimetype="text/html",
                        headers={"Content-Security-Policy": POLICY})  # fmt: skip

    def static(self, request: Request, name: str) -> Response:
        if name not in SCRIPTS:
            raise NotFound()
        text = resources.files("nnlab.reports").joinpath(name).read_text(encoding="utf-8")
        return Response(text, mimetype="text/javascript", headers={"Cache-Control": "no-cache"})

    def runs(self, request: Request) -> Response:
        found = self.listing()
        if request.args.get("since") == found["version"]:
            return _json({"version": found["version"], "unchanged": True})
        return _json(found)

    def folder(self, request: Request) -> Response:
        rel = request.args.get("path", "")
        return _json(self.folders.view(rel, request.args.get("since")))

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self.urls.bind_to_environ(environ).match()
            response = getattr(self, endpoint)(request, **args)
        except NnlabError as exc:  # a folder gone or unreadable: said in one line
            response = _json({"error": " ".join(str(exc).split())}, 404)
        except HTTPException as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)


class _Quiet(WSGIRequestHandler):
    """No line per request on the terminal (the page polls every two seconds)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve(root: Path, port: int, ready: Callable[[str], None]) -> None:
    """Serve ``root``'s dashboard on 127.0.0.1:``port`` (0: a free port) until interrupted
    (KeyboardInterrupt, which the caller turns into its exit code); ``ready`` gets the URL
    once the port is bound. NnlabError for a missing folder or a port in use."""
    if not root.is_dir():
        raise NnlabError(f"{root}: no such runs folder (RUNS_DIR names a folder of runs)")
    listener = _listen(port)  # bound here: Werkzeug's own bind prints and exits on an error
    server = make_server(HOST, port, Dashboard(root), threaded=True, request_handler=_Quiet,
                         fd=listener.fileno())  # fmt: skip
    try:
        ready(f"http://{HOST}:{server.port}/")
        server.serve_forever()  # Werkzeug's returns on Ctrl-C: it swallows KeyboardInterrupt
        raise KeyboardInterrupt  # and nothing else ends it: the caller's exit code for one
    finally:
        server.server_close()
        listener.close()


def _listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:``port``; NnlabError (one line) when it is taken."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not another's listener
    try:
        listener.bind((HOST, port))
        listener.listen(64)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise NnlabError(
                f"--port {port}: {HOST}:{port} is in use (another nnlab serve?); choose "
                "another port, or --port 0 for a free one"
            ) from None
        raise NnlabError(f"--port {port}: cannot listen on {HOST}:{port}: "
                         f"{exc.strerror or exc}") from None  # fmt: skip
    return listener
