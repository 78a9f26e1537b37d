"""submit and fetch over HTTP, as hestat-client does (http.client, no extra package).

Everything that would leave this machine is checked first: the study must
parse as exactly one public study (no secret key can be in it) and every
table as exactly one encrypted table of that study. A 503 (the server's
queue or upload slots are full) is retried after its Retry-After (1..30 s),
at most `retries` times and 60 s of waiting per request.
"""
import http.client
import json
import ssl
import time
import urllib.parse

from ._lib import HestatError
from .study import Study, read_bytes

RETRY_BUDGET_S = 60


class Client:
    """A hestat-server: Client("http://127.0.0.1:8750", token)."""

    def __init__(self, server, token=None, *, token_file=None, retries=5, timeout=60.0, cafile=None):
        if token is not None and token_file is not None:
            raise ValueError("token or token_file, not both")
        if token_file is not None:
            with open(token_file, encoding="ascii") as f:
                token = f.readline().rstrip("\r\n")
        self.server = server.rstrip("/")
        self._token = token
        self.retries = retries
        self.timeout = timeout
        self._ctx = ssl.create_default_context(cafile=cafile) if cafile else None

    def __repr__(self):
        return "<hestat.Client %s, token %s>" % (self.server, "set (not shown)" if self._token else "none")

    # ---- requests -------------------------------------------------------------
    def _send(self, method, path, body):
        """One request: (status, body, Retry-After). A server that refuses an
        upload (401, 413, 503) answers before the body and closes: the
        answer is read even when sending the rest of the body failed."""
        u = urllib.parse.urlsplit(self.server + path)
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=self.timeout, context=self._ctx)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=self.timeout)
        try:
            conn.putrequest(method, u.path + ("?" + u.query if u.query else ""))
            if self._token:
                conn.putheader("Authorization", "Bearer " + self._token)
            conn.putheader("Content-Length", str(len(body or b"")))
            if body:
                conn.putheader("Content-Type", "application/octet-stream")
            conn.endheaders()
            try:
                view = memoryview(body or b"")
                for i in range(0, len(view), 1 << 20):
                    conn.send(view[i:i + (1 << 20)])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the answer, if any, says why
            r = conn.getresponse()
            return r.status, r.read(), r.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as e:
            raise HestatError("%s %s: %s" % (method, self.server + path, e or type(e).__name__)) from None
        finally:
            conn.close()

    def _request(self, method, path, body=None, want=200):
        url = self.server + path
        waited = 0.0
        for attempt in range(1, 10 ** 6):
            status, data, retry_after = self._send(method, path, body)
            if status == want:
                return data
            if status == 503 and attempt <= self.retries:
                try:
                    w = float(retry_after)
                except (TypeError, ValueError):
                    w = float(2 ** min(attempt - 1, 5))
                w = min(max(w, 1.0), 30.0)
                if waited + w <= RETRY_BUDGET_S:
                    time.sleep(w)
                    waited += w
                    continue
            raise HestatError("%s %s: HTTP %d: %s" % (method, url, status, _error_text(data)), status)

    def _json(self, method, path, body=None, want=200):
        data = self._request(method, path, body, want)
        try:
            return json.loads(data)
        except ValueError:
            raise HestatError("%s %s: the server's reply is not JSON" % (method, path)) from None

    def health(self):
        """Whether the server answers GET /health."""
        try:
            self._request("GET", "/health")
            return True
        except HestatError:
            return False

    # ---- what hestat-client submit and fetch do ------------------------------
    def submit(self, study, *tables, study_id=None):
        """Uploads the study (a Study, study.hst bytes or path; unless study_id
        names one already on the server) and encrypted tables (bytes or paths).
        Returns the study id."""
        own = not isinstance(study, Study)
        s = Study.from_public(study) if own else study
        try:
            public = s.public_bytes()
            blobs = [read_bytes(t, "table") for t in tables]
            for b in blobs:
                s.check_table(b)  # exactly one table of this study, before any connection
        finally:
            if own:
                s.close()
        if study_id is None:
            study_id = self._json("POST", "/studies", public, 201).get("study")
            if not study_id:
                raise HestatError("server: no study id in the reply")
        for b in blobs:
            self._json("POST", "/studies/%s/tables" % study_id, b, 201)
        return study_id

    def fetch(self, study_id, stats="all", out=None, wait=3600.0):
        """Asks for the statistics ("all" or "means") over every table of the
        study, waits for the job, and returns the encrypted result's bytes (or
        writes them to `out`)."""
        if stats not in ("all", "means"):
            raise HestatError("stats: 'all' or 'means', not %r" % (stats,))
        job = self._json("POST", "/studies/%s/jobs?stats=%s" % (study_id, stats), b"", 202).get("job")
        if not job:
            raise HestatError("server: no job id in the reply")
        t0 = time.monotonic()
        while True:
            st = self._json("GET", "/studies/%s/jobs/%s" % (study_id, job))
            status = st.get("status")
            if status == "done":
                break
            if status in (None, "failed") or time.monotonic() - t0 > wait:
                raise HestatError("job %s failed: %s" % (job, st.get("error") or "timed out"))
            time.sleep(0.1)
        data = self._request("GET", "/studies/%s/jobs/%s/result" % (study_id, job))
        if out is not None:
            with open(out, "wb") as f:
                f.write(data)
            return out
        return data


def _error_text(data):
    try:
        return json.loads(data).get("error") or "unexpected status"
    except (ValueError, AttributeError):
        return "unexpected status"
