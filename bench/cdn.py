#!/usr/bin/env python3
"""A proxy-cache hit against a Refract memory hit, for bench/RESULTS.md.

  cargo build --release && python3 bench/cdn.py          # DURATION=10 ROUNDS=3 CONNS=64

The release binary (delivery.negotiate = "vary") over a copy of one corpus JPEG; in front of it
the shipped nginx config (deploy/nginx/refract.conf) and the shipped Varnish VCL
(deploy/varnish/refract.vcl), each on 127.0.0.1. One variant URL (?w=800), warmed for the three
Accept classes, then wrk with a Chromium Accept header at CONNS connections against Refract
directly (memory-tier hit), nginx (proxy_cache hit) and Varnish (hit), interleaved over ROUNDS;
medians. Everything shares the machine's cores with wrk: ratios matter more than absolutes.
"""
import os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "target/release/refract")
CORPUS = os.environ.get("CORPUS", os.path.join(ROOT, "../shared/corpus"))
SOURCE = "path-2560x1600-icc.jpg"
DURATION = int(os.environ.get("DURATION", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONNS = int(os.environ.get("CONNS", "64"))
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(url, secs=30):
    deadline = time.time() + secs
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            if time.time() > deadline:
                raise SystemExit(f"{url} did not come up")
            time.sleep(0.1)


def get(url, accept):
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.headers.get("content-type"), r.headers.get("x-proxy-cache") or r.headers.get("x-cache"), len(r.read())


def wrk(url):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNS}", f"-d{DURATION}s", "--latency", "-H", f"Accept: {CHROMIUM}", url],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    return rps, ms("50"), ms("99")


def main():
    tmp = tempfile.mkdtemp(prefix="refract-cdn-bench-")
    os.chmod(tmp, 0o777)
    procs = []
    try:
        data = os.path.join(tmp, "data")
        os.makedirs(os.path.join(data, "images"))
        shutil.copy(os.path.join(CORPUS, SOURCE), os.path.join(data, "images", SOURCE))
        port = free_port()
        env = dict(os.environ, REFRACT_API_KEY="bench-admin-key-0123456789",
                   REFRACT__DELIVERY__NEGOTIATE="vary", REFRACT__SERVER__LOG="warn")
        procs.append(subprocess.Popen([BIN, "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        refract = f"http://127.0.0.1:{port}"
        wait(refract + "/health")

        # nginx, the shipped config.
        nport = free_port()
        conf = open(os.path.join(ROOT, "deploy/nginx/refract.conf")).read()
        conf = (conf.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{port};")
                .replace("listen 80;", f"listen 127.0.0.1:{nport};")
                .replace("/var/cache/nginx/refract", os.path.join(tmp, "cache")))
        open(os.path.join(tmp, "refract.conf"), "w").write(conf)
        t = lambda n: os.path.join(tmp, n)
        open(t("nginx.conf"), "w").write(
            f"daemon off;\nworker_processes auto;\npid {t('nginx.pid')};\nerror_log {t('error.log')} warn;\n"
            f"events {{ worker_connections 1024; }}\nhttp {{ access_log off; "
            f"client_body_temp_path {t('b')}; proxy_temp_path {t('p')}; fastcgi_temp_path {t('f')}; "
            f"uwsgi_temp_path {t('u')}; scgi_temp_path {t('s')}; include {t('refract.conf')}; }}\n")
        procs.append(subprocess.Popen(["nginx", "-p", tmp, "-e", t("error.log"), "-c", t("nginx.conf")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        nginx = f"http://127.0.0.1:{nport}"

        # Varnish, the shipped VCL.
        vport = free_port()
        vcl = open(os.path.join(ROOT, "deploy/varnish/refract.vcl")).read().replace(
            '.port = "8080";', f'.port = "{port}";')
        open(t("refract.vcl"), "w").write(vcl)
        cmd = ["varnishd", "-F", "-a", f"127.0.0.1:{vport}", "-f", t("refract.vcl"), "-n", t("varnish"),
               "-s", "malloc,256m"]
        if os.geteuid() != 0:
            cmd += ["-j", "none"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        varnish = f"http://127.0.0.1:{vport}"
        for b in (nginx, varnish):
            wait(b + "/health")

        path = f"/img/{SOURCE}?w=800"
        for b in (refract, nginx, varnish):
            for accept in (CHROMIUM, "image/webp,*/*", "*/*"):
                get(b + path, accept)
                get(b + path, accept)
        ctype, status, size = get(nginx + path, CHROMIUM)
        assert status == "HIT" and ctype == "image/avif", (status, ctype)

        targets = [("Refract (memory hit)", refract), ("nginx proxy_cache hit", nginx), ("Varnish hit", varnish)]
        runs = {name: [] for name, _ in targets}
        for _ in range(ROUNDS):
            for name, base in targets:
                runs[name].append(wrk(base + path))
        print(f"{SOURCE} ?w=800 (AVIF, {size} bytes), Accept: Chromium, {CONNS} connections, "
              f"{DURATION} s x {ROUNDS} rounds, medians\n")
        print("| target | req/s | p50 ms | p99 ms | req/s vs Refract |")
        print("|---|---:|---:|---:|---:|")
        base_rps = statistics.median(r[0] for r in runs[targets[0][0]])
        for name, _ in targets:
            rps = statistics.median(r[0] for r in runs[name])
            p50 = statistics.median(r[1] for r in runs[name])
            p99 = statistics.median(r[2] for r in runs[name])
            print(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rps / base_rps:.2f} |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
