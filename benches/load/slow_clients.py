#!/usr/bin/env python3
"""Driver of slow-clients.sh: a slowloris and unsigned-upload attack on one `railyard run`.

Usage: slow_clients.py PORT PID  (settings from the environment, see slow-clients.sh)

Opens SLOW connections that send their headers a line every 2 s and never finish them, and
UPLOADS concurrent unsigned POSTs of UPLOAD_BYTES (each sent over UPLOAD_SECS) to a
signature-only route, while a legit
signed webhook is sent every 0.5 s (a 503 is retried after its Retry-After, as a platform
does). Samples the server's VmRSS and its open sockets (/proc/PID) every 50 ms and prints a
JSON summary on stdout and readable lines on stderr.
"""

import base64
import collections
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
PID = int(sys.argv[2])
SLOW = int(os.environ.get("SLOW", "500"))
UPLOADS = int(os.environ.get("UPLOADS", "100"))
UPLOAD_BYTES = int(os.environ.get("UPLOAD_BYTES", str(3_900_000)))
UPLOAD_SECS = float(os.environ.get("UPLOAD_SECS", "5"))
ATTACK_SECS = float(os.environ.get("ATTACK_SECS", "30"))
SETTLE_SECS = float(os.environ.get("SETTLE_SECS", "15"))
SECRET = os.environ.get("SECRET", "s3cret").encode()
PATH = "/hooks/signed"

lock = threading.Lock()
stop = threading.Event()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def vmrss_kib():
    try:
        with open(f"/proc/{PID}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def sockets():
    n = 0
    try:
        for fd in os.listdir(f"/proc/{PID}/fd"):
            try:
                if os.readlink(f"/proc/{PID}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return None
    return n


samples = []  # (t, rss KiB, sockets)


def sampler():
    while not stop.is_set():
        samples.append((time.monotonic(), vmrss_kib(), sockets()))
        time.sleep(0.05)


def read_status(s, timeout):
    """Status code of the response on s, or a word saying why there is none."""
    s.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return "closed"
            buf += chunk
    except socket.timeout:
        return "no-answer"
    except OSError:
        return "reset"
    parts = buf.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else "garbled"


def head(length, extra):
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {length}"] + [f"{k}: {v}" for k, v in extra] + ["", ""]
    return "\r\n".join(lines).encode()


# --- slowloris -------------------------------------------------------------------------------
slow = collections.Counter()
slow_closed_after = []


def slowloris(i):
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    except OSError:
        with lock:
            slow["connect-failed"] += 1
        return
    with lock:
        slow["connected"] += 1
    s.settimeout(2)
    try:
        s.sendall(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        n = 0
        while not stop.is_set():
            try:
                data = s.recv(4096)
                if not data:
                    raise ConnectionResetError
                with lock:
                    slow["answered"] += 1
            except socket.timeout:
                pass
            n += 1
            s.sendall(f"X-Slow-{n}: {i}\r\n".encode())
        with lock:
            slow["open-at-end"] += 1
    except OSError:
        with lock:
            slow["closed-by-server"] += 1
            slow_closed_after.append(time.monotonic() - t0)
    finally:
        s.close()


# --- unsigned uploads ------------------------------------------------------------------------
uploads = collections.Counter()
upload_secs = []


def upload(i):
    t0 = time.monotonic()
    body_chunk = b"x" * 65536
    try:
        s = socket.create_connection(("127.0.0.1", PORT), timeout=60)
    except OSError:
        with lock:
            uploads["connect-failed"] += 1
        return
    status = None
    try:
        s.sendall(head(UPLOAD_BYTES, [("X-Sig", "bm90IGEgc2lnbmF0dXJl")]))
        left = UPLOAD_BYTES
        # Paced over UPLOAD_SECS, so that every upload is in flight at once.
        pause = UPLOAD_SECS * len(body_chunk) / UPLOAD_BYTES
        while left > 0:
            n = min(left, len(body_chunk))
            s.sendall(body_chunk[:n])
            left -= n
            if pause > 0:
                time.sleep(pause)
    except OSError:
        pass  # answered (and closed) before the whole body was sent: read the answer
    status = read_status(s, 60)
    s.close()
    with lock:
        uploads[str(status)] += 1
        upload_secs.append(time.monotonic() - t0)


# --- the legit sender ------------------------------------------------------------------------
legit = collections.Counter()
legit_first = collections.Counter()
legit_latency = []


def signed_once(n):
    body = json.dumps({"legit": n}).encode()
    sig = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    try:
        s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
        s.sendall(head(len(body), [("X-Sig", sig), ("Connection", "close")]) + body)
        status = read_status(s, 30)
        s.close()
        return status
    except OSError:
        return "connect-failed"


def legit_sender():
    n = 0
    while not stop.is_set():
        n += 1
        t0 = time.monotonic()
        first = signed_once(n)
        legit_first[str(first)] += 1
        status, tries = first, 1
        while status == 503 and tries < 10:  # Retry-After: 1
            time.sleep(1)
            status, tries = signed_once(n), tries + 1
        legit[str(status)] += 1
        legit_latency.append(time.monotonic() - t0)
        time.sleep(0.5)


def stats(xs):
    if not xs:
        return None
    xs = sorted(xs)
    return {"min": round(xs[0], 2), "p50": round(xs[len(xs) // 2], 2), "max": round(xs[-1], 2)}


def rss_mb(kib):
    return None if kib is None else round(kib / 1024, 1)


def main():
    threading.Thread(target=sampler, daemon=True).start()
    time.sleep(1)
    before = vmrss_kib()
    t_start = time.monotonic()
    threads = [threading.Thread(target=slowloris, args=(i,), daemon=True) for i in range(SLOW)]
    for t in threads:
        t.start()
    time.sleep(1)
    legit_t = threading.Thread(target=legit_sender, daemon=True)
    legit_t.start()
    ups = [threading.Thread(target=upload, args=(i,), daemon=True) for i in range(UPLOADS)]
    for t in ups:
        t.start()
    for t in ups:
        t.join()
    t_uploads_done = time.monotonic()
    rest = ATTACK_SECS - (t_uploads_done - t_start)
    if rest > 0:
        time.sleep(rest)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    legit_t.join(timeout=60)
    t_end = time.monotonic()
    rss_at_end = vmrss_kib()
    time.sleep(SETTLE_SECS)
    after = vmrss_kib()
    during = [(t, r, s) for (t, r, s) in samples if t_start <= t <= t_end]
    peak = max((r for (_, r, _) in during if r is not None), default=None)
    peak_sockets = max((s for (_, _, s) in during if s is not None), default=None)
    out = {
        "settings": {"slow": SLOW, "uploads": UPLOADS, "upload_bytes": UPLOAD_BYTES,
                     "upload_secs": UPLOAD_SECS, "attack_secs": ATTACK_SECS, "settle_secs": SETTLE_SECS},
        "rss_mb": {"before": rss_mb(before), "peak": rss_mb(peak),
                   "end_of_attack": rss_mb(rss_at_end), "after": rss_mb(after)},
        "server_sockets_peak": peak_sockets,
        "slowloris": dict(slow),
        "slowloris_closed_after_s": stats(slow_closed_after),
        "uploads": dict(uploads),
        "upload_secs": stats(upload_secs),
        "legit_first_try": dict(legit_first),
        "legit_final": dict(legit),
        "legit_latency_s": stats(legit_latency),
        "uploads_done_after_s": round(t_uploads_done - t_start, 1),
    }
    print(json.dumps(out))
    r = out["rss_mb"]
    log(f"== RSS (MB): before {r['before']}, peak {r['peak']}, end of attack {r['end_of_attack']}, "
        f"{SETTLE_SECS:.0f} s after {r['after']}")
    log(f"== server sockets at peak (listener and connections): {peak_sockets}")
    log(f"== slowloris ({SLOW}): {dict(slow)}; closed by the server after (s): {stats(slow_closed_after)}")
    log(f"== unsigned uploads ({UPLOADS} x {UPLOAD_BYTES} B): {dict(uploads)}; took (s): {stats(upload_secs)}")
    log(f"== legit signed webhook every 0.5 s: first try {dict(legit_first)}, after retries {dict(legit)}; "
        f"latency (s, with retries): {stats(legit_latency)}")


main()
