"""A small client of Scrapyd's JSON API (https://scrapyd.readthedocs.io/en/stable/api.html):
the calls the dispatcher makes, each answering a dict or raising :class:`ScrapydError` with a
one-line reason naming the server.

This is the dispatcher talking to its own job servers, not harvesting: it does not go
through Scrapy or the network guard. A user name and password in the URL
(``http://user:pass@host:6800``) are sent as HTTP basic authentication, as Scrapyd expects.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any


class ScrapydError(Exception):
    """A Scrapyd call failed; ``unreachable`` when the server did not answer at all."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


class Scrapyd:
    def __init__(self, url: str, timeout: float = 15.0):
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not a Scrapyd URL (http://HOST:PORT)")
        self._auth = None
        if parts.username is not None:
            creds = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(creds.encode("utf-8")).decode("ascii")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        if ":" in parts.hostname:
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Scrapyd({self.url})"

    # -- plumbing ------------------------------------------------------------------------

    def _open(self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(self.url + path, data=data, headers=dict(headers or {}))
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - an http(s) URL checked above
        except urllib.error.HTTPError as e:
            raise ScrapydError(f"Scrapyd at {self.url}: HTTP {e.code} for {path.split('?')[0]}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ScrapydError(f"Scrapyd at {self.url} does not answer ({reason})", unreachable=True) from None

    def _call(self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            with self._open(path, data, headers) as response:
                body = response.read()
        except OSError:  # timed out or broken while reading the answer
            raise ScrapydError(f"Scrapyd at {self.url} does not answer (timed out)", unreachable=True) from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise ScrapydError(f"Scrapyd at {self.url}: {path.split('?')[0]} did not answer JSON "
                               "(is this URL a Scrapyd?)") from None
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            message = str(answer.get("message") or "error") if isinstance(answer, dict) else "error"
            if "Traceback" in message:  # a Python error on the server (the egg did not load): its last line
                message = message.split(":", 1)[0] + ": " + message.strip().splitlines()[-1]
            raise ScrapydError(f"Scrapyd at {self.url}: {path.split('?')[0]}: {message}")
        return answer

    def _get(self, endpoint: str, **params: str) -> dict[str, Any]:
        return self._call(f"/{endpoint}" + (f"?{urllib.parse.urlencode(params)}" if params else ""))

    def _post(self, endpoint: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        return self._call(f"/{endpoint}", urllib.parse.urlencode(fields).encode("utf-8"),
                          {"Content-Type": "application/x-www-form-urlencoded"})

    # -- the API -------------------------------------------------------------------------

    def daemon_status(self) -> dict[str, Any]:
        return self._get("daemonstatus.json")

    def list_versions(self, project: str) -> list[str]:
        return list(self._get("listversions.json", project=project).get("versions") or [])

    def list_spiders(self, project: str, version: str | None = None) -> list[str]:
        params = {"project": project, **({"_version": version} if version else {})}
        return list(self._get("listspiders.json", **params).get("spiders") or [])

    def add_version(self, project: str, version: str, egg: bytes) -> dict[str, Any]:
        """Upload an egg (``addversion.json``, a multipart form, as ``curl -F egg=@file``)."""
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (("project", project), ("version", version)):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="egg"; filename="{project}.egg"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + egg + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return self._call("/addversion.json", b"".join(parts),
                          {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def schedule(self, project: str, spider: str, *, jobid: str, version: str | None = None,
                 args: dict[str, str] | None = None, settings: dict[str, str] | None = None) -> str:
        fields = [("project", project), ("spider", spider), ("jobid", jobid)]
        if version:
            fields.append(("_version", version))
        fields += [("setting", f"{k}={v}") for k, v in (settings or {}).items()]
        fields += list((args or {}).items())
        return str(self._post("schedule.json", fields)["jobid"])

    def list_jobs(self, project: str) -> dict[str, list[dict[str, Any]]]:
        answer = self._get("listjobs.json", project=project)
        return {k: list(answer.get(k) or []) for k in ("pending", "running", "finished")}

    def cancel(self, project: str, job: str, signal: str | None = None) -> dict[str, Any]:
        """Cancel a job: a pending one is dropped, a running one sent ``signal`` (Scrapyd's
        default, INT, when None; Scrapyd 1.5 and later take another, such as TERM)."""
        fields = [("project", project), ("job", job)] + ([("signal", signal)] if signal else [])
        return self._post("cancel.json", fields)

    def has_items(self) -> bool:
        """Whether this Scrapyd keeps item feeds that it serves (``items_dir`` set to a local
        folder): its web console then links them, and /items/ answers once a feed exists."""
        try:
            with self._open("/items/") as response:
                if response.status == 200:
                    return True
        except ScrapydError as e:
            if e.unreachable:
                raise
        with self._open("/") as response:
            return b'/items/">Items</a>' in response.read()

    def download(self, path: str, target: Path) -> None:
        """Save a file Scrapyd serves (a job's item feed or log, ``path`` as listjobs gives it)."""
        try:
            with self._open(path) as response, target.open("wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as e:  # the connection broke or timed out mid-file
            raise ScrapydError(f"Scrapyd at {self.url} stopped answering while sending {path} ({e})",
                               unreachable=True) from None

    def tail(self, path: str, size: int = 8192) -> str:
        """The end of a text file Scrapyd serves (a job's log)."""
        try:
            with self._open(path, headers={"Range": f"bytes=-{size}"}) as response:
                return response.read().decode("utf-8", errors="replace")
        except OSError as e:
            raise ScrapydError(f"Scrapyd at {self.url} stopped answering ({e})", unreachable=True) from None
