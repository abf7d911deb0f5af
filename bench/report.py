#!/usr/bin/env python3
"""Turns the raw outputs of bench/run.sh into bench/RESULTS.md and bench/results.json."""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from datetime import datetime, timezone

WORK, OUT, QUICK, LOAD_BEFORE, LOAD_AFTER = sys.argv[1:6]
QUICK = QUICK == "1"


def read(name, default=""):
    try:
        with open(os.path.join(WORK, name), encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def bench(name):
    """Median of each metric per benchmark name, from `go test -bench` output."""
    runs = {}
    for line in read(name).splitlines():
        if not line.startswith("Benchmark"):
            continue
        fields = line.split()
        bname = re.sub(r"-\d+$", "", fields[0])
        metrics = {}
        for i in range(2, len(fields) - 1, 2):
            try:
                metrics[fields[i + 1]] = float(fields[i])
            except ValueError:
                pass
        runs.setdefault(bname, []).append(metrics)
    return {k: {m: statistics.median(r[m] for r in v if m in r) for m in v[0]} for k, v in runs.items()}


def benchstat(name):
    exe = os.path.join(subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout.strip(), "bin", "benchstat")
    if not os.path.exists(exe):
        return "(benchstat not available)"
    return subprocess.run([exe, os.path.join(WORK, name)], capture_output=True, text=True).stdout.strip()


pipe = bench("pipeline.txt")
dec = bench("decoders.txt")
mat = bench("matcher.txt")
ddb = json.loads(read("ddb.json", "{}"))
st = json.loads(read("startup.json", "{}"))
load = json.loads(read("rss_load.json", "{}"))
MiB = 1024.0

sel = pipe["BenchmarkPipeline/decoder=selective"]
gotw = pipe["BenchmarkPipeline/decoder=gotwitter"]
full = pipe["BenchmarkPipeline/decoder=encodingjson-fullstruct"]
ceil = pipe["BenchmarkPipeline/ceiling=indexbyte-newlines"]
cpu_us = sel["cpu-us/tweet"]
cpu_tps = 1e6 / cpu_us


def m(name, n, metric="ns/op"):
    return mat.get(f"{name}/terms={n}", {}).get(metric)


ratio_400_10 = m("BenchmarkMatcher", 400) / m("BenchmarkMatcher", 10)
ratio_400_10_en = m("BenchmarkMatcherEnglish", 400) / m("BenchmarkMatcherEnglish", 10)
vs_regexp = m("BenchmarkRegexpBaseline", 400) / m("BenchmarkMatcher", 400)
vs_contains = m("BenchmarkContainsBaseline", 400) / m("BenchmarkMatcher", 400)
binary = int(read("binary_bytes", "0"))
image = read("image", "not measured")
image_mb = int(image) / 1e6 if image.isdigit() else None
rss_idle = int(read("rss_idle", "0")) / MiB
rss_load = load.get("rss_peak_kib", 0) / MiB
window = load.get("window_s", 0)
matched_rate = load.get("matched", 0) / window if window else 0
tick = os.sysconf("SC_CLK_TCK")
svc_cpu_s = load.get("cpu_ticks", 0) / tick
ddb_ratio = ddb["go_items_per_s"] / ddb["seed_items_per_s"]
SEC_MONTH = 730 * 3600  # Fargate bills hours; a month is ~730 h


def vcpu_hours(rate):
    return rate * cpu_us / 1e6 * 730  # vCPU-seconds per second = vCPUs busy, x 730 h


def target(ok):
    return "met" if ok else "**missed**"


results = {
    "pipeline_tweets_per_s": round(sel["tweets/s"]),
    "pipeline_tweets_per_cpu_s": round(cpu_tps),
    "pipeline_mb_per_s": round(sel["MB/s"], 1),
    "pipeline_vs_gotwitter_ratio": round(sel["tweets/s"] / gotw["tweets/s"], 2),
    "pipeline_vs_fullstruct_ratio": round(sel["tweets/s"] / full["tweets/s"], 2),
    "pipeline_vs_indexbyte_ratio": round(sel["MB/s"] / ceil["MB/s"], 4),
    "matcher_400_over_10_ratio": round(ratio_400_10, 3),
    "matcher_vs_regexp_ratio": round(vs_regexp, 2),
    "matcher_vs_contains_ratio": round(vs_contains, 2),
    "ddb_items_per_s": round(ddb["go_items_per_s"], 1),
    "ddb_items_per_s_vs_seed_ratio": round(ddb_ratio, 1),
    "ddb_requests_per_item": round(ddb["go_requests_per_item"], 4),
    "ddb_seed_requests_per_item": round(ddb["seed_requests_per_item"], 4),
    "ddb_wcu_per_item": ddb["go_wcu_per_item"],
    "rss_idle_mib": round(rss_idle, 1),
    "rss_1k_per_s_mib": round(rss_load, 1),
    "rss_burst_throttled_peak_mib": round(ddb["burst_peak_rss_mib"], 1),
    "startup_to_healthy_ms": st.get("startup_ms_median"),
    "aws_requests_before_ready": st.get("aws_requests_before_ready"),
    "healthcheck_ms": st.get("healthcheck_ms_median"),
    "binary_mb": round(binary / 1e6, 2),
    "image_mb": round(image_mb, 2) if image_mb else None,
    "cpu_s_per_million_tweets": round(cpu_us, 2),
}
with open(os.path.join(OUT, "results.json"), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2)
    f.write("\n")

cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
gov = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
nm = read("nm.txt")
nm_pkgs = "\n".join(f"| {p} | {int(s)/1e6:.2f} MB |" for s, p in (l.split(None, 1) for l in read("nm_pkgs.txt").splitlines()))
image_line = f"{image_mb:.2f} MB = {image_mb*1e6/2**20:.2f} MiB ({target(image_mb <= 20)} against 20 MB read as 10^6 bytes; {target(image_mb*1e6/2**20 <= 20)} as MiB; the stripped binary is {binary/1e6:.1f} MB of it)" if image_mb else f"not measured: {read('image_reason', 'unknown')}"

md = f"""# streammatch benchmark results

Written by `bench/run.sh`{" with BENCH_QUICK=1 (shorter windows and counts)" if QUICK else ""}; do not edit by hand.

- Date: {now}
- Machine: {cpu_model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}
- Go: {gov}
- Load average (1/5/15 min) before: {LOAD_BEFORE}; after: {LOAD_AFTER}. Other engineers' builds and
  tests share the two cores, so wall-clock figures are pessimistic; `cpu-us/tweet` (process CPU
  time from getrusage) is much less affected and is what the CPU cost below uses.
- Every comparison ran side by side in the same `go test` run, interleaved by `-count`; figures are medians.

## Summary

| Measure | Result | Baseline | Ratio | Target |
| --- | --- | --- | --- | --- |
| Pipeline, 1 core (GOMAXPROCS=1), wall | {sel["tweets/s"]:,.0f} tweets/s, {sel["MB/s"]:.0f} MB/s | go-twitter path {gotw["tweets/s"]:,.0f} tweets/s | {sel["tweets/s"]/gotw["tweets/s"]:.1f}x | 143,199 tweets/s: {target(sel["tweets/s"] >= 143199)} |
| Pipeline, per CPU-second | {cpu_tps:,.0f} tweets/s ({cpu_us:.2f} us/tweet) | encoding/json full struct {1e6/full["cpu-us/tweet"]:,.0f} tweets/s | {full["cpu-us/tweet"]/cpu_us:.1f}x | 143,199: {target(cpu_tps >= 143199)} |
| Pipeline vs memory ceiling | {sel["MB/s"]:.0f} MB/s | bytes.IndexByte newline scan {ceil["MB/s"]:,.0f} MB/s | {sel["MB/s"]/ceil["MB/s"]:.3f} | - |
| Matcher 400 vs 10 terms (real tweets) | {m("BenchmarkMatcher", 400)/1000:.2f} vs {m("BenchmarkMatcher", 10)/1000:.2f} us/tweet | - | {ratio_400_10:.2f} (English: {ratio_400_10_en:.2f}) | <= 1.5: {target(ratio_400_10 <= 1.5)} |
| Matcher vs regexp alternation (400) | {m("BenchmarkMatcher", 400)/1000:.2f} us | {m("BenchmarkRegexpBaseline", 400)/1000:.2f} us | {vs_regexp:.1f}x faster | - |
| Matcher vs strings.Contains loop (400) | {m("BenchmarkMatcher", 400)/1000:.2f} us | {m("BenchmarkContainsBaseline", 400)/1000:.2f} us | {vs_contains:.1f}x faster | - |
| DynamoDB items/s | {ddb["go_items_per_s"]:,.0f} | seed boto3 put_item {ddb["seed_items_per_s"]:,.1f} | {ddb_ratio:.0f}x | >= 50x: {target(ddb_ratio >= 50)} |
| DynamoDB HTTP requests per item | {ddb["go_requests_per_item"]:.3f} | seed {ddb["seed_requests_per_item"]:.2f} | 1/{ddb["seed_requests_per_item"]/ddb["go_requests_per_item"]:.0f} | <= 1/20: {target(ddb["go_requests_per_item"] * 20 <= ddb["seed_requests_per_item"])} |
| DynamoDB write units per item | {ddb["go_wcu_per_item"]:.2f} ({ddb["go_bytes_per_item"]:.0f} B) | seed {ddb["seed_wcu_per_item"]:.2f} ({ddb["seed_bytes_per_item"]:.0f} B) | - | 1 WCU (projection, not the 4.7 KB tweet) |
| RSS idle | {rss_idle:.1f} MiB | - | - | - |
| RSS at ~{matched_rate:,.0f} matched msgs/s, {window} s (peak) | {rss_load:.1f} MiB | - | - | <= 32 MiB: {target(0 < rss_load <= 32)} |
| Peak RSS, 10x burst, DynamoDB throttled | {ddb["burst_peak_rss_mib"]:.1f} MiB | before burst {ddb["burst_rss_before_mib"]:.1f} MiB | - | bounded by the queue ({ddb["burst_queue_size"]} items) |
| Start-up: exec to first 200 on /healthz | {st.get("startup_ms_median")} ms median (min {st.get("startup_ms_min")}, max {st.get("startup_ms_max")}, {st.get("runs")} runs) | - | - | <= 50 ms: {target((st.get("startup_ms_median") or 1e9) <= 50)} |
| AWS requests before ready | {st.get("aws_requests_before_ready")} | - | - | none expected |
| `streammatch healthcheck` run time | {st.get("healthcheck_ms_median")} ms median (max {st.get("healthcheck_ms_max")}) | - | - | - |
| Binary, stripped (-s -w, -trimpath) | {binary/1e6:.1f} MB | - | - | - |
| Image (podman) | {image_line} | seed amazonlinux:2 + Python ~ 400-450 MB (below) | - | - |
| CPU per million tweets | {cpu_us:.1f} CPU-s | go-twitter path {gotw["cpu-us/tweet"]:.1f} CPU-s | {gotw["cpu-us/tweet"]/cpu_us:.1f}x less | - |

## 1. Pipeline throughput

`BenchmarkPipeline` (bench/pipeline_test.go): the 100 real tweets of ../shared/testdata/twitter.json
({sel["MB/s"]*1e6/sel["tweets/s"]/1000:.2f} KB per tweet on average) replayed as NDJSON by `stream.ReplaySource`
through `stream.Worker` (decode -> match 400 terms -> hand-off) into a sink that batches 25-item slices
and counts them, `-cpu 1`. Matched fraction {sel.get("matched-frac", 0):.2f}.

```
{benchstat("pipeline.txt")}
```

Profile of the selective pipeline (`go test -cpuprofile`, `pprof -top`):

```
{read("profile.txt")}
```

Decoders alone (`BenchmarkDecoders` in stream/fastdecode_test.go, one op = the 100 tweets):

```
{benchstat("decoders.txt")}
```

The decoder chosen is the selective single-pass decoder in stream/fastdecode.go: it validates the
whole line (as encoding/json does) but only materialises the fields streammatch uses, skipping
strings eight bytes at a time (SWAR test for quote, backslash, control bytes and non-ASCII, with
UTF-8 validation fused into the scan). It must return exactly what encoding/json returns: a
differential fuzz test (FuzzDecodeLineFast) and a test over every tweet of twitter.json (compact,
pretty-printed and with `\\/` escapes) prove it, and the lines it does not model (case-folded or
escaped keys, duplicate fields, nesting > 64) are handed to encoding/json. encoding/json/v2 was
not used: in Go 1.26 it still needs GOEXPERIMENT=jsonv2, and a v2 decode would still visit every
field of the 4.7 KB tweet. simdjson-go (AVX2 is present) was not adopted: a cgo-free SIMD tape
still builds a full tape of every value, and it adds ~1 MB and a CPU-feature dependency for a
decoder that is no longer the bottleneck.

{"" if cpu_tps < 143199 else "(The target is met.) "}The 143,199 tweets/s target is **missed**: {cpu_us:.2f} us of CPU per tweet, i.e. {cpu_tps:,.0f}
tweets per CPU-second. The profile above shows where it goes: the selective decoder
(fastDecoder.*, utf8.Valid) takes about three quarters, the track matcher (matchScratch.addField,
the Aho-Corasick walk) about a fifth. The decoder must still validate every byte of the 4.7 KB
line, as encoding/json does (a syntax error anywhere makes the line invalid_json), and does so at
~450-550 MB/s with an 8-byte SWAR scan; with the matcher at ~2 us/tweet, 7 us/tweet would need
the decoder at ~1 GB/s, i.e. real SIMD (assembly or simdjson-go's tape with its own validation
rules, which would have to be proven equal to encoding/json's) rather than portable Go.

## 2. Matcher scaling

```
{benchstat("matcher.txt")}
```

## 3. DynamoDB write efficiency (same moto_server, counting proxies)

`TestDynamoDBVersusSeed` (bench/ddb_test.go) writes {ddb["go_items"]} matches through `store.Writer`
(one client, BatchWriteItem of 25) and {ddb["seed_items"]} through bench/seed_put_item.py (the
seed's pattern: a new boto3 resource and one put_item per item), each through its own
internal/faultproxy counting proxy in front of one moto_server. Write units are computed from
the stored items by DynamoDB's sizing rule (attribute names + values, 1 WCU per started KB).
moto answers far faster than DynamoDB, so absolute items/s are an emulator figure; the request
count per item is exact.

Why the items/s ratio moves between runs (68x, 41x and 37x on this machine on one day) and can
miss the 50x target: both sides are bound by moto, not by the client. moto stores each item in
Python under one interpreter lock, about 0.35 ms per item, so the writer's one batch in flight
tops out near 2,500-2,900 items/s whatever the Go side does. The seed's cost is dominated by
building a boto3 client per item (10-30 ms, most sensitive to the machine's load), so a quieter
machine makes the seed faster and the ratio smaller. The requests per item (1/25) and write
units per item do not vary. Against real DynamoDB (about 5-10 ms per call) the seed pays a
round trip and a client per item and the writer one round trip per 25 items.

## 4. Memory

- Idle RSS: {rss_idle:.1f} MiB (service connected to the simulator, no tweets).
- Under load: twittersim at 1,150 msgs/s (synthetic tweets, ~87% of which match, FILTER=golang,aws,twitter), DynamoDB on
  moto; window {window} s{" (BENCH_QUICK; the full run uses 60 s)" if QUICK else ""}; {load.get("matched", 0)} matched
  (~{matched_rate:,.0f}/s); RSS mean {load.get("rss_mean_kib", 0)/MiB:.1f} MiB, peak {rss_load:.1f} MiB.
  The service used {svc_cpu_s:.1f} CPU-s over the window.
- 10x burst while throttled: {ddb["burst_offered"]} matches offered to a Writer with QueueSize
  {ddb["burst_queue_size"]} while every write is answered ProvisionedThroughputExceeded: it accepted
  {ddb["burst_accepted_while_throttled"]} and then blocked (back-pressure stops the stream reader);
  peak RSS of the process {ddb["burst_peak_rss_mib"]:.1f} MiB. The bound is the queue: QUEUE_SIZE x
  the size of a queued match (~1 KB projection + terms), ~5-10 MB at the default 5,000.
- GOMEMLIMIT for a 512 MiB task: **GOMEMLIMIT=400MiB**. The working set is ~20-30 MiB, so the
  limit never binds in normal operation (GOGC stays in charge and collections stay rare); it only
  makes the GC work harder before the kernel's OOM killer would act, leaving ~100 MiB for the
  runtime's non-heap memory (stacks, the binary's text, the 1 MiB read buffer) and the ECS agent's
  headroom. A limit near the working set would make the GC run continuously (a death spiral).

## 5. Start-up

bench/startup execs the stripped binary with the real configuration (twitter source pointed at
twittersim, DynamoDB at moto through a counting proxy) and polls /healthz every 0.5 ms.
The service makes {st.get("aws_requests_before_ready")} AWS requests before it is ready: the
DynamoDB client is built without a network call and the first request is the first batch write.
The healthcheck subcommand is a fresh process doing one HTTP GET.

## 6. Size

Stripped binary: {binary/1e6:.2f} MB. Largest packages (symbol sizes, unstripped build):

| Package | Size |
| --- | --- |
{nm_pkgs}

Largest symbols:

```
{nm}
```

Image: {image_line}.

The seed's image, for comparison (not built here: no registry is reachable, so these are
published figures, stated as assumptions): amazonlinux:2 is ~163 MB uncompressed (Docker Hub lists
~62 MB compressed for amd64); `yum install python3 python3-pip` adds ~100-130 MB (python3 3.7 with
its standard library, pip, setuptools); `pip install tweepy boto3` adds ~90-100 MB (botocore alone
is ~80-90 MB unpacked, with its service models), so ~350-450 MB in all, about
{(400/image_mb) if image_mb else 20:.0f}x the streammatch image. It also starts a Python interpreter and
imports boto3 (~0.5-1 s) before the first tweet.

## 7. CPU cost

{cpu_us:.2f} CPU-s per million tweets (process CPU time in the pipeline benchmark, GOMAXPROCS=1).
Fargate bills vCPU-hours; a month is ~730 h:

| Rate | vCPU busy | vCPU-hours/month | Share of the smallest task (0.25 vCPU) |
| --- | --- | --- | --- |
| 57 tweets/s (1% filter) | {57*cpu_us/1e6:.5f} | {vcpu_hours(57):.2f} | {57*cpu_us/1e6/0.25*100:.2f}% |
| 5,700 tweets/s (firehose average) | {5700*cpu_us/1e6:.4f} | {vcpu_hours(5700):.1f} | {5700*cpu_us/1e6/0.25*100:.1f}% |

The task is billed for its 0.25 vCPU whatever it uses (182.5 vCPU-hours/month); the table is the
CPU actually consumed by decoding, matching and batching (the DynamoDB client's HTTP and signing
work adds a little per 25 items).
"""
with open(os.path.join(OUT, "RESULTS.md"), "w", encoding="utf-8") as f:
    f.write(md)
