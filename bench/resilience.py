#!/usr/bin/env python3
"""Resilience figures for bench/RESULTS.md, against the release binary, on 127.0.0.1 only.

  python3 bench/resilience.py storm     # abandoned heavy requests: peak RSS, time to drain
  python3 bench/resilience.py outage    # an S3 origin stopped, killed and restarted under load

storm: 2 waves x 300 distinct AVIF requests from the 20 MP corpus JPEG, each client hanging up
0.6 s after sending; samples RSS and refract_cpu_waiting every 100 ms; then 8 fresh transforms.
outage: SeaweedFS (the one .ci/test.sh installs) as the origin; 8 clients loop for 40 s over a
mix of cached variants (20 warmed URLs) and fresh ones; SIGSTOP at 8 s (for 6 s), SIGKILL at
22 s, restart at 28 s; reports the status mix per phase and the time from restart to the first
fresh 200.
"""
import json, os, random, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "target/release/refract")
CORPUS = os.environ.get("CORPUS", os.path.join(ROOT, "../shared/corpus"))
WEED = os.environ.get("REFRACT_TEST_WEED", os.path.expanduser("~/.cache/refract-ci/weed-venv/bin/weed"))
HEAVY = "kleiber-6028x3391.jpg"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def metric(base, name):
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    return -1


def get(url, timeout=30, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    t0 = time.time()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status, r.headers.get("x-cache", ""), time.time() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("x-cache", "") if e.headers else "", time.time() - t0
    except Exception:
        return 0, "", time.time() - t0


def start_refract(env, root=None):
    port = free_port()
    data = tempfile.mkdtemp()
    args = [BIN, "--data-dir", data, "--listen", f"127.0.0.1:{port}"]
    if root:
        args += ["--storage-root", root]
    e = dict(os.environ, REFRACT__SERVER__LOG="warn", **env)
    p = subprocess.Popen(args, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            return p, base, port
        except Exception:
            time.sleep(0.05)
    raise SystemExit("refract did not start")


def storm():
    p, base, port = start_refract({"REFRACT__LIMITS__AVIF_BUDGET_MS": "0",
                                   "REFRACT__CACHE__PERSISTENT__MAX_BYTES": "0"}, CORPUS)
    get(f"{base}/img/{HEAVY}?w=300&fm=avif", timeout=120)
    idle = rss_mib(p.pid)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.time(), rss_mib(p.pid), metric(base, "refract_cpu_waiting")))
            time.sleep(0.1)

    t = threading.Thread(target=sample)
    t.start()
    sent = 0
    for wave in range(2):
        conns = []
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET /img/{HEAVY}?w={400 + wave * 300 + i}&fm=avif HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            conns.append(s)
            sent += 1
        time.sleep(0.6)
        for s in conns:
            s.close()
    hung_up = time.time()
    while metric(base, "refract_cpu_waiting") != 0 or metric(base, "refract_cpu_running") != 0:
        time.sleep(0.05)
    drained = time.time() - hung_up
    stop.set()
    t.join()
    fresh = []
    threads = [threading.Thread(target=lambda i=i: fresh.append(get(f"{base}/img/{HEAVY}?w={1500 + i}&fm=avif", 120)))
               for i in range(8)]
    [x.start() for x in threads]
    [x.join() for x in threads]
    right_after = rss_mib(p.pid)
    # The idle trim runs within a second or two of the pool going idle.
    t_idle = time.time()
    after = right_after
    while time.time() - t_idle < 15:
        time.sleep(0.5)
        after = rss_mib(p.pid)
        if after < idle + 100:
            break
    settled_s = time.time() - t_idle
    p.terminate()
    p.wait()
    out = {
        "requests_abandoned": sent,
        "idle_rss_mib": idle,
        "peak_rss_mib": max(s[1] for s in samples),
        "peak_cpu_waiting": max(s[2] for s in samples),
        "seconds_to_gauge_0_after_hang_up": round(drained, 2),
        "fresh_statuses": sorted(f[0] for f in fresh),
        "fresh_median_s": round(sorted(f[2] for f in fresh)[4], 2),
        "rss_right_after_fresh_mib": right_after,
        "rss_settled_mib": after,
        "seconds_to_settle": round(settled_s, 1),
    }
    print(json.dumps(out, indent=2))


def s3(endpoint, *args):
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                        "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "bk:bs",
                        "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *args], capture_output=True, text=True)
    return r.stdout


def outage():
    d = tempfile.mkdtemp()
    ports = [free_port() for _ in range(5)]
    with open(f"{d}/s3.json", "w") as f:
        json.dump({"identities": [{"name": "b", "credentials": [{"accessKey": "bk", "secretKey": "bs"}],
                                   "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}, f)

    def run_weed():
        s3p, m, v, fi, a = ports
        return subprocess.Popen([WEED, "mini", f"-dir={d}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                                 f"-master.port={m}", f"-volume.port={v}", f"-filer.port={fi}", f"-s3.port={s3p}",
                                 "-admin.ui=false", f"-admin.port={a}", "-webdav=false", "-s3.port.iceberg=0",
                                 "-s3.port.lance=0", f"-s3.config={d}/s3.json", "-s3.autoCreateBucket=false",
                                 f"-filer.localSocket={d}/f.sock", f"-s3.localSocket={d}/s.sock"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    endpoint = f"http://127.0.0.1:{ports[0]}"
    weed = run_weed()
    while s3(endpoint, "-X", "PUT", f"{endpoint}/images") != "200":
        time.sleep(0.3)
    assert s3(endpoint, "-X", "PUT", "--upload-file", f"{CORPUS}/path-2560x1600-icc.jpg",
              f"{endpoint}/images/o/path.jpg") == "200"
    p, base, _ = start_refract({"REFRACT__STORAGE__BACKEND": "s3", "REFRACT__STORAGE__ENDPOINT": endpoint,
                                "REFRACT__STORAGE__BUCKET": "images", "REFRACT__STORAGE__PREFIX": "o/",
                                "REFRACT__STORAGE__ACCESS_KEY_ID": "bk", "REFRACT__STORAGE__SECRET_ACCESS_KEY": "bs",
                                "REFRACT__STORAGE__TIMEOUT_MS": "2000"})
    for w in range(100, 120):
        get(f"{base}/img/path.jpg?w={w}")
    t0 = time.time()
    phases = [(0, "normal"), (8, "stalled (SIGSTOP)"), (14, "recovered"), (22, "down (SIGKILL)"), (28, "restarting")]
    results, stop, counter = [], threading.Event(), [0]

    def phase_at(t):
        name = phases[0][1]
        for start, n in phases:
            if t >= start:
                name = n
        return name

    def client():
        while not stop.is_set():
            counter[0] += 1
            cached = random.random() < 0.5
            w = random.randrange(100, 120) if cached else 200 + counter[0] % 7900
            t = time.time() - t0
            st, xc, dt = get(f"{base}/img/path.jpg?w={w}", timeout=30)
            results.append((phase_at(t), "cached" if cached else "fresh", st, xc, dt, time.time() - t0))

    threads = [threading.Thread(target=client) for _ in range(8)]
    [x.start() for x in threads]
    time.sleep(8)
    weed.send_signal(signal.SIGSTOP)
    time.sleep(6)
    weed.send_signal(signal.SIGCONT)
    time.sleep(8)
    weed.kill()
    weed.wait()
    time.sleep(6)
    restarted = time.time() - t0
    weed = run_weed()
    time.sleep(12)
    stop.set()
    [x.join() for x in threads]
    weed.kill()
    p.terminate()
    p.wait()
    recovered = min((r[5] for r in results if r[1] == "fresh" and r[2] == 200 and r[5] > restarted), default=None)
    table = {}
    for ph, kind, st, xc, dt, _ in results:
        key = f"{ph} / {kind}"
        e = table.setdefault(key, {"n": 0, "statuses": {}, "x_cache": {}, "max_s": 0.0})
        e["n"] += 1
        e["statuses"][str(st)] = e["statuses"].get(str(st), 0) + 1
        e["x_cache"][xc or "-"] = e["x_cache"].get(xc or "-", 0) + 1
        e["max_s"] = round(max(e["max_s"], dt), 2)
    print(json.dumps({"by_phase": table,
                      "seconds_from_restart_to_first_fresh_200":
                          None if recovered is None else round(recovered - restarted, 2)}, indent=2))


if __name__ == "__main__":
    {"storm": storm, "outage": outage}[sys.argv[1] if len(sys.argv) > 1 else "storm"]()
