#!/usr/bin/env python3
"""Parsing and reporting for bench/run.sh.

  report.py rec RECORDS.jsonl key=value ...      parse one raw tool output (raw=, kind=) into a record
  report.py render RECORDS.jsonl NOTES META_JSON OUT_PREFIX   write OUT_PREFIX.md/.json, print the .md
"""
import json
import re
import statistics
import sys

CLK_TCK = 100  # getconf CLK_TCK on Linux
MIN_CPU_REQUESTS = 50_000  # CPU per request is trusted from this many requests on (10 ms ticks)

SCENARIOS = [
    ("ka13", "H1 keep-alive saturation, 13 B body (wrk -t1 -c50, closed loop)"),
    ("ka16k", "H1 keep-alive, 16 KiB body (wrk -t1 -c50)"),
    ("stream1m", "1 MiB streaming (wrk -t1 -c10, nginx upstream serves a 1 MiB file)"),
    ("rate1k", "Fixed rate 1k req/s (oha -c50 -q 1000, latency-corrected)"),
    ("rate10k", "Fixed rate 10k req/s (oha -c50 -q 10000, latency-corrected)"),
    ("h2c", "h2c front, 100 streams (h2load -t1 -c50 -m2), h1 to the upstream"),
    ("tls", "TLS + h2 front, 100 streams (h2load -t1 -c50 -m2), h1 to the upstream"),
    ("newconn", "New connection per request (wrk -t1 -c50, Connection: close)"),
    ("idle", "Idle memory: 9,000 keep-alive connections on a fresh process (one request each)"),
]
PATHS = ["direct", "nginx", "haproxy", "pingora", "libproxy", "libproxy-hooked"]
UNIT = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 6e7}


def to_us(v, u):
    return float(v) * UNIT[u]


def parse_wrk(t):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", t)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", t)
    if m:
        r["requests"] = int(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", t, re.M)
        if m:
            r[key] = to_us(m.group(1), m.group(2))
    err = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    if m:
        err += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    if m:
        err += int(m.group(1))
    r["errors"] = err
    return r


def parse_oha(t):
    i = t.find("{")
    d = json.loads(t[i:]) if i >= 0 else {}
    r = {}
    s = d.get("summary", {})
    if "requestsPerSec" in s:
        r["rps"] = s["requestsPerSec"]
    lp = d.get("latencyPercentiles", {})
    for k, key in (("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")):
        if lp.get(k) is not None:
            r[key] = lp[k] * 1e6
    codes = d.get("statusCodeDistribution", {}) or {}
    r["requests"] = sum(codes.values())
    # "aborted due to deadline": requests still in flight when -z ends (oha's own cut-off, any path),
    # counted apart from errors
    ed = dict(d.get("errorDistribution") or {})
    r["aborted_at_end"] = ed.pop("aborted due to deadline", 0)
    r["errors"] = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(ed.values())
    return r


def parse_h2load(t):
    r = {}
    m = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", t)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", t)
    if m:
        r["requests"] = int(m.group(4))
        r["errors"] = int(m.group(5)) + int(m.group(6))
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", t)
    if m:
        r["mean"] = to_us(m.group(5), m.group(6))
    return r


def cmd_rec(path, kv):
    r = {}
    for a in kv:
        k, _, v = a.partition("=")
        try:
            r[k] = int(v)
        except ValueError:
            r[k] = v
    r.setdefault("status", "ok")
    kind = r.get("kind")
    if kind in ("wrk", "oha", "h2load"):
        try:
            t = open(r["raw"], errors="replace").read()
            r.update({"wrk": parse_wrk, "oha": parse_oha, "h2load": parse_h2load}[kind](t))
        except Exception as e:  # keep the record, mark it failed
            r["status"], r["note"] = "fail", f"could not parse {kind} output: {e!r}"
        if not r.get("rps"):
            r["status"] = "fail"
            r.setdefault("note", f"{kind} produced no result: " + open(r["raw"], errors="replace").read()[-300:].replace("\n", " "))
        n = r.get("requests") or 0
        if n:
            r["cpu_us"] = r.get("cpu_ticks", 0) * 1e6 / CLK_TCK / n
            r["up_us"] = r.get("up_ticks", 0) * 1e6 / CLK_TCK / n
            r["cpu_trusted"] = n >= MIN_CPU_REQUESTS
        r["raw_tail"] = open(r["raw"], errors="replace").read()[-2000:]
    elif kind == "idle":
        held = r.get("held") or 0
        if held:
            r["kb_per_conn"] = (r["rss_after"] - r["rss_before"]) / held
        else:
            r["status"], r["note"] = "fail", "no connection was held"
    with open(path, "a") as f:
        f.write(json.dumps(r) + "\n")


NUM = ["rps", "requests", "p50", "p99", "p999", "mean", "cpu_us", "up_us", "up_accepts", "tw_delta", "errors",
       "rss_before", "rss_after", "held", "established", "kb_per_conn"]


def aggregate(records):
    out = {}
    for r in records:
        out.setdefault((r["scenario"], r["path"]), []).append(r)
    agg = {}
    for key, rs in out.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        if not ok:
            agg[key] = {"status": rs[0].get("status"), "note": rs[0].get("note", "")}
            continue
        a = {"status": "ok", "reps": len(ok)}
        for f in NUM:
            vals = [r[f] for r in ok if isinstance(r.get(f), (int, float))]
            if vals:
                a[f] = statistics.median(vals)
        if len(ok) > 1:
            a["rps_reps"] = [round(r.get("rps", 0)) for r in ok]
            a["rep_ids"] = [r.get("rep") for r in ok]
        # CPU per request pooled over the repetitions: sum of ticks / sum of requests (10 ms ticks
        # need many requests; ≥ 50k makes it trusted)
        nreq = sum(r.get("requests") or 0 for r in ok)
        if nreq and any("cpu_ticks" in r for r in ok):
            a["cpu_requests"] = nreq
            a["cpu_us"] = sum(r.get("cpu_ticks", 0) for r in ok) * 1e6 / CLK_TCK / nreq
            a["up_us"] = sum(r.get("up_ticks", 0) for r in ok) * 1e6 / CLK_TCK / nreq
            if all("user_ticks" in r for r in ok):
                a["user_us"] = sum(r["user_ticks"] for r in ok) * 1e6 / CLK_TCK / nreq
                a["sys_us"] = sum(r["sys_ticks"] for r in ok) * 1e6 / CLK_TCK / nreq
            a["cpu_trusted"] = nreq >= MIN_CPU_REQUESTS
        else:
            a["cpu_trusted"] = all(r.get("cpu_trusted", True) for r in ok)
        if f"errors" in a and a["errors"]:
            a["note"] = f"{int(a['errors'])} errors"
        agg[key] = a
    return agg


def fmt_rps(v):
    return f"{v:,.0f}" if v is not None else "–"


def fmt_us(v):
    if v is None:
        return "–"
    return f"{v:.0f} µs" if abs(v) < 1000 else f"{v / 1000:.2f} ms"


def fmt_add(v):
    if v is None:
        return "–"
    s = "+" if v >= 0 else "−"
    v = abs(v)
    return f"{s}{v:.0f} µs" if v < 1000 else f"{s}{v / 1000:.2f} ms"


def fmt_ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"


def fmt_cpu(a):
    v = a.get("cpu_us")
    if v is None:
        return "–"
    return f"{v:.1f}" + ("" if a.get("cpu_trusted") else "*")


def tw(a):
    v = a.get("tw_delta")
    return int(v) if isinstance(v, (int, float)) else "–"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(records, notes, meta):
    agg = aggregate(records)
    md = []
    mode = "QUICK (smoke)" if meta.get("quick") else "full"
    md.append(f"# libproxy benchmark — {meta.get('stamp')}")
    md.append("")
    md.append(f"Mode: {mode}; {meta.get('duration_s')} s per load, median of {meta.get('reps')} interleaved "
              f"repetition(s) for ka13/rate10k/h2c/tls; commit {meta.get('git')}; {meta.get('cpus')} CPUs, kernel {meta.get('kernel')}; "
              f"total {meta.get('runtime_s')} s; load average {meta.get('loadavg_start')} at the start of the loads, "
              f"{meta.get('loadavg_end')} at the end (should be < 2.5: 2 cores, the load itself makes ~2). Load generator on CPU 0; proxy + upstream (nginx, 1 worker) on CPU 1.")
    md.append(f"libproxy = `{meta.get('proxy_cmd')}`; tools: {meta.get('nginx')}, {meta.get('haproxy')}, "
              f"{meta.get('wrk')}, {meta.get('oha')}, {meta.get('h2load')}.")
    md.append("")
    md.append("CPU µs/req is the proxy process's utime+stime from /proc over the measured loads, pooled over the "
              "repetitions (sum of ticks / sum of requests; for nginx, the worker; for direct, the upstream worker). "
              "`*` = fewer than 50k requests pooled, so only indicative (10 ms ticks). req/s, p50, p99 are medians of the repetitions. "
              "Upstream conns = accepts counted by the upstream's stub_status during the load; TIME_WAIT Δ = sockets "
              "that entered TIME_WAIT during the load on the proxy↔upstream hop (newconn: both hops); see bench/README.md. "
              "Latency deltas vs direct can be negative: direct's own tail is noisy on a shared core.")
    for scen, title in SCENARIOS:
        rows = []
        d = agg.get((scen, "direct"), {})
        n = agg.get((scen, "nginx"), {})
        h = agg.get((scen, "haproxy"), {})
        for p in PATHS:
            a = agg.get((scen, p))
            if a is None:
                continue
            if a.get("status") != "ok":
                label = a.get("status", "skip")
                cells = {"ka13": 11, "ka16k": 11, "stream1m": 12, "newconn": 11, "rate1k": 12, "rate10k": 12,
                         "h2c": 9, "tls": 9, "idle": 5}[scen]
                rows.append([p, f"{label}: {a.get('note', '')}"] + [""] * (cells - 2))
                continue
            if scen in ("ka13", "ka16k", "stream1m", "newconn"):
                row = [p, fmt_rps(a.get("rps")), fmt_ratio(a.get("rps"), d.get("rps")),
                       fmt_ratio(a.get("rps"), n.get("rps")), fmt_us(a.get("p50")), fmt_us(a.get("p99")),
                       fmt_cpu(a), f"{a['up_us']:.1f}" if "up_us" in a else "–",
                       int(a.get("up_accepts", 0)), tw(a), int(a.get("errors", 0))]
                if scen == "stream1m":
                    row.insert(2, f"{a.get('rps', 0):,.0f}")  # MiB/s == req/s for a 1 MiB body
                rows.append(row)
            elif scen in ("rate1k", "rate10k"):
                def add(f):
                    return fmt_add(a.get(f) - d.get(f)) if p != "direct" and a.get(f) is not None and d.get(f) is not None else "–"
                rows.append([p, fmt_rps(a.get("rps")), fmt_us(a.get("p50")), fmt_us(a.get("p99")),
                             fmt_us(a.get("p999")), add("p50"), add("p99"), add("p999"), fmt_cpu(a),
                             int(a.get("up_accepts", 0)), tw(a), int(a.get("errors", 0))])
            elif scen in ("h2c", "tls"):
                rows.append([p, fmt_rps(a.get("rps")), fmt_ratio(a.get("rps"), d.get("rps")),
                             fmt_ratio(a.get("rps"), n.get("rps")), fmt_ratio(a.get("rps"), h.get("rps")),
                             fmt_us(a.get("mean")), fmt_cpu(a), int(a.get("up_accepts", 0)), int(a.get("errors", 0))])
            elif scen == "idle":
                rows.append([p, int(a.get("held", 0)), f"{a['rss_before'] / 1024:.1f}", f"{a['rss_after'] / 1024:.1f}",
                             f"{a['kb_per_conn']:.2f}"])
        if not rows:
            continue
        if scen in ("ka13", "ka16k", "stream1m", "newconn"):
            hdr = ["path", "req/s", "× direct", "× nginx", "p50", "p99", "proxy CPU µs/req", "upstream µs/req",
                   "upstream conns opened", "TIME_WAIT Δ", "errors"]
            if scen == "stream1m":
                hdr.insert(2, "MiB/s")
        elif scen in ("rate1k", "rate10k"):
            hdr = ["path", "achieved req/s", "p50", "p99", "p99.9", "added p50", "added p99", "added p99.9",
                   "proxy CPU µs/req", "upstream conns opened", "TIME_WAIT Δ", "errors"]
        elif scen in ("h2c", "tls"):
            hdr = ["path", "req/s", "× direct", "× nginx", "× HAProxy", "mean latency", "proxy CPU µs/req",
                   "upstream conns opened", "errors"]
        else:
            hdr = ["path", "connections held", "RSS before (MiB)", "RSS after (MiB)", "KB per idle conn"]
        md += ["", f"### {title}", "", table(hdr, rows)]

    # where the CPU goes: user vs sys µs/request (bench/cpu_split.sh style), pooled over repetitions
    rows = []
    for scen in ("ka13", "rate10k", "h2c", "tls"):
        n = agg.get((scen, "nginx"), {})
        for p in PATHS:
            a = agg.get((scen, p), {})
            if a.get("status") != "ok" or "user_us" not in a:
                continue
            rows.append([scen, p, f"{a['cpu_requests']:,}", f"{a['user_us']:.1f}", f"{a['sys_us']:.1f}",
                         f"{a['cpu_us']:.1f}" + ("" if a.get("cpu_trusted") else "*"),
                         fmt_ratio(a["user_us"], n.get("user_us")), fmt_ratio(a["sys_us"], n.get("sys_us")),
                         fmt_ratio(a["cpu_us"], n.get("cpu_us"))])
    if rows:
        md += ["", "### Where the CPU goes: user vs sys µs/request of the proxy process (/proc/PID/stat utime, stime)", "",
               table(["scenario", "path", "requests (pooled)", "user µs/req", "sys µs/req", "total µs/req",
                      "user × nginx", "sys × nginx", "total × nginx"], rows)]

    # same-run ratios, repetition by repetition (adjacent loads of the interleaved rounds)
    def per_rep(scen, num, den):
        by = {}
        for r in records:
            if r.get("scenario") == scen and r.get("status") == "ok" and r.get("rps"):
                by.setdefault(r.get("rep"), {})[r["path"]] = r["rps"]
        return [v[num] / v[den] for k, v in sorted(by.items()) if num in v and den in v]

    rows = []
    for scen, num, den in (("ka13", "libproxy", "nginx"), ("ka13", "libproxy-hooked", "libproxy"),
                           ("rate10k", "libproxy-hooked", "libproxy"),
                           ("h2c", "libproxy", "haproxy"), ("h2c", "libproxy", "nginx"),
                           ("h2c", "libproxy-hooked", "libproxy"),
                           ("tls", "libproxy", "haproxy"), ("tls", "libproxy", "nginx")):
        rs = per_rep(scen, num, den)
        if rs:
            an, ad = agg.get((scen, num), {}), agg.get((scen, den), {})
            rows.append([scen, f"{num} / {den}", ", ".join(f"{x:.2f}" for x in rs), f"{statistics.median(rs):.2f}",
                         fmt_ratio(an.get("cpu_us"), ad.get("cpu_us"))])
    if rows:
        md += ["", "### Same-run ratios (req/s per interleaved repetition; CPU/req pooled)", "",
               table(["scenario", "ratio", "req/s ratio per rep", "median", "CPU µs/req ratio"], rows)]

    # targets (issue 6), for libproxy
    def g(s, p, f):
        a = agg.get((s, p), {})
        return a.get(f) if a.get("status") == "ok" else None

    def verdict(ok):
        return "–" if ok is None else ("met" if ok else "**missed**")

    T = []
    lc, nc = g("ka13", "libproxy", "cpu_us"), g("ka13", "nginx", "cpu_us")
    T.append(["proxy CPU/req ≤ 0.8× nginx (ka13)", f"{lc:.1f} µs" if lc else "–",
              f"nginx {nc:.1f} µs → limit {0.8 * nc:.1f}" if nc else "–", verdict(lc <= 0.8 * nc if lc and nc else None)])
    lr, nr = g("ka13", "libproxy", "rps"), g("ka13", "nginx", "rps")
    T.append(["req/s ≥ nginx (ka13)", fmt_rps(lr), f"nginx {fmt_rps(nr)}", verdict(lr >= nr if lr and nr else None)])
    dp = g("rate10k", "direct", "p99")
    la, na = g("rate10k", "libproxy", "p99"), g("rate10k", "nginx", "p99")
    la = la - dp if la is not None and dp is not None else None
    na = na - dp if na is not None and dp is not None else None
    T.append(["added p99 at 10k req/s ≤ nginx's", fmt_add(la), f"nginx {fmt_add(na)}",
              verdict(la <= na if la is not None and na is not None else None)])
    lh, hh = g("h2c", "libproxy", "rps"), g("h2c", "haproxy", "rps")
    T.append(["h2c throughput ≥ 1.1× HAProxy", (fmt_rps(lh) + f" ({lh / hh:.2f}×)" if hh else fmt_rps(lh)) if lh else "n/a",
              f"HAProxy {fmt_rps(hh)}" if hh else "–", verdict(lh >= 1.1 * hh if lh and hh else None)])
    lt, ht = g("tls", "libproxy", "rps"), g("tls", "haproxy", "rps")
    T.append(["(TLS+h2 throughput vs HAProxy, informative)", (fmt_rps(lt) + f" ({lt / ht:.2f}×)" if ht else fmt_rps(lt)) if lt else "n/a",
              f"HAProxy {fmt_rps(ht)}" if ht else "–", "–"])
    li = g("idle", "libproxy", "kb_per_conn")
    T.append(["≤ 2 KB RSS per idle keep-alive conn", f"{li:.2f} KB" if li is not None else "–",
              "nginx {}".format(f"{g('idle', 'nginx', 'kb_per_conn'):.2f} KB" if g('idle', 'nginx', 'kb_per_conn') is not None else "–"),
              verdict(li <= 2 if li is not None else None)])
    hk = g("ka13", "libproxy-hooked", "rps")
    T.append(["C hooks on every phase ≥ 0.95× no-hook (ka13)", (fmt_rps(hk) + f" ({hk / lr:.2f}×)" if lr else fmt_rps(hk)) if hk else "skipped",
              f"no-hook {fmt_rps(lr)}", verdict(hk >= 0.95 * lr if hk and lr else None)])
    tws = [g(s, "libproxy", "tw_delta") for s in ("ka13", "ka16k", "stream1m", "rate1k", "rate10k")]
    tws = [t for t in tws if t is not None]
    T.append(["0 TIME_WAIT growth in keep-alive runs", ", ".join(str(int(t)) for t in tws) if tws else "–",
              "ka13, ka16k, stream1m, rate1k, rate10k", verdict(all(t <= 0 for t in tws) if tws else None)])
    md += ["", "### Targets from issue 6 (libproxy; medians of the interleaved repetitions)", "", table(["target", "libproxy", "reference", "verdict"], T)]
    if notes.strip():
        md += ["", "### Notes", ""] + [f"- {l}" for l in notes.strip().splitlines()]
    md.append("")
    return "\n".join(md), agg, T


def cmd_render(rec_path, notes_path, meta_json, prefix):
    records = [json.loads(l) for l in open(rec_path) if l.strip()]
    notes = open(notes_path).read()
    meta = json.loads(meta_json)
    meta["stamp"] = prefix.rsplit("/", 1)[-1]
    md, agg, targets = render(records, notes, meta)
    for r in records:
        r.pop("raw", None)
    out = {"meta": meta, "notes": notes.strip().splitlines(),
           "summary": [dict(scenario=s, path=p, **a) for (s, p), a in agg.items()],
           "targets": [dict(zip(["target", "libproxy", "reference", "verdict"], t)) for t in targets],
           "records": records}
    with open(prefix + ".md", "w") as f:
        f.write(md)
    with open(prefix + ".json", "w") as f:
        json.dump(out, f, indent=1)
    print(md)


if __name__ == "__main__":
    if sys.argv[1] == "rec":
        cmd_rec(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "render":
        cmd_render(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
