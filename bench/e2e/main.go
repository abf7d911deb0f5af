// Command e2e runs the end-to-end benchmarks of bench/run.sh on the built service binary, each in
// a fresh service process, and writes the figures as JSON:
//
//   - firehose: the stream sender (bench/firehose, its own process) sends N tweets of which 1 in
//     500 match, as fast as the service reads; two load sizes, so that the marginal cost
//     (tweets per service CPU-second) leaves out start-up. CPU is utime+stime from
//     /proc/PID/stat, peak RSS is VmHWM from /proc/PID/status;
//   - profile: one firehose run of the unstripped binary with `perf record -g` attached;
//   - rate: about 1,000 matched tweets a second for a while, peak RSS;
//   - burst: about 10,000 matched tweets a second while DynamoDB is throttled (internal/faultproxy
//     between the service and moto answers every write with ProvisionedThroughputExceeded),
//     peak RSS, then the throttling stops and the run must still account for every tweet;
//   - seed: the blog's twitterstream.py (bench/seed_twitterstream.py, tweepy 4 and boto3) and the
//     service side by side on the same moto, every tweet matching: marginal CPU per matched
//     tweet, DynamoDB requests per item (a counting proxy in front of moto), items kept (distinct
//     items in the table over matched tweets) and peak RSS.
//
// Every run waits until the service's /api/status shows received == N and written == matched,
// then checks received = matched + unmatched + skipped and counts the table's items with a
// Scan (Select=COUNT). moto_server is started by this command on a free port.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/faultproxy"
)

// The four stream credentials: dummy values that only the sender and the clients know.
var streamCreds = []string{
	"CONSUMERKEY=bench-consumer-key", "CONSUMERSECRETKEY=bench-consumer-secret",
	"ACCESSTOKEN=bench-access-token", "ACCESSTOKENSECRET=bench-access-token-secret",
}

const (
	region = "us-east-1"
	table  = "twitterStream"
	filter = "fargate"
)

type options struct {
	bin, perfBin, perfOut, firehose, corpus, seed, python, out, work string
	gomemlimit                                                       string
	quick                                                            bool
	only                                                             map[string]bool
	clkTck                                                           float64
	reps                                                             int
	settle                                                           time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the service binary, built as the Dockerfile builds it")
	flag.StringVar(&o.perfBin, "perf-bin", "", "the unstripped binary for the profile run")
	flag.StringVar(&o.perfOut, "perf-out", "", "perf.data written by the profile run")
	flag.StringVar(&o.firehose, "firehose", "", "the stream sender (bench/firehose)")
	flag.StringVar(&o.corpus, "corpus", "", "the tweets (../shared/testdata/twitter.json)")
	flag.StringVar(&o.seed, "seed", "", "bench/seed_twitterstream.py (empty: no seed comparison)")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "the Python with tweepy 4 and boto3")
	flag.StringVar(&o.out, "out", "e2e.json", "where to write the figures")
	flag.StringVar(&o.work, "work", os.TempDir(), "directory for logs")
	flag.StringVar(&o.gomemlimit, "gomemlimit", "400MiB", "GOMEMLIMIT of the service, as taskdef.json sets it")
	flag.BoolVar(&o.quick, "quick", false, "smaller loads and shorter windows")
	flag.Float64Var(&o.clkTck, "clk-tck", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	flag.IntVar(&o.reps, "reps", 0, "repetitions of the firehose pair (0: 3, or 1 with -quick)")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "idle time after connecting, before start-up CPU is read")
	only := flag.String("only", "firehose,profile,rate,burst,seed", "which benchmarks to run")
	flag.Parse()
	o.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		o.only[strings.TrimSpace(s)] = true
	}
	if o.reps <= 0 {
		o.reps = 3
		if o.quick {
			o.reps = 1
		}
	}
	e := &env{o: o}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := e.run(ctx)
	stop()
	e.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

// sizes are the loads of one bench run.
type sizes struct {
	firehose1, firehose2 int64
	profile              int64
	rateWindow           time.Duration
	burstWindow          time.Duration
	ours1, ours2         int64
	seed1, seed2         int64
}

func (o options) sizes() sizes {
	if o.quick {
		return sizes{100_000, 400_000, 400_000, 15 * time.Second, 6 * time.Second, 5_000, 20_000, 300, 900}
	}
	return sizes{200_000, 1_000_000, 1_000_000, 60 * time.Second, 15 * time.Second, 10_000, 40_000, 2_000, 6_000}
}

type env struct {
	o       options
	motoURL string
	ddb     *dynamodb.Client

	mu    sync.Mutex
	procs []*proc
	tbs   []*tb
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s e2e: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (e *env) run(ctx context.Context) error {
	for _, p := range []string{e.o.bin, e.o.firehose, e.o.corpus} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("-bin, -firehose and -corpus are required: %w", err)
		}
	}
	if err := e.startMoto(ctx); err != nil {
		return err
	}
	sz := e.o.sizes()
	res := map[string]any{
		"quick": e.o.quick, "gomemlimit": e.o.gomemlimit, "filter": filter, "reps": e.o.reps,
	}
	write := func() error {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(e.o.out, append(data, '\n'), 0o644)
	}

	if e.o.only["firehose"] {
		var pairs []map[string]any
		var runs []runResult
		for rep := range e.o.reps {
			pair := map[string]any{}
			var cpu [2]float64
			for i, n := range []int64{sz.firehose1, sz.firehose2} {
				e.logf("firehose %d/%d: %d tweets, 1 in 500 matching", rep+1, e.o.reps, n)
				r, err := e.serviceRun(ctx, scenario{name: fmt.Sprintf("firehose-%d-%d", rep, n), bin: e.o.bin, n: n, matchEvery: 500})
				if err != nil {
					return err
				}
				runs = append(runs, r)
				cpu[i] = r.CPUSeconds
			}
			pair["n1"], pair["n2"] = sz.firehose1, sz.firehose2
			pair["cpu1_s"], pair["cpu2_s"] = cpu[0], cpu[1]
			if d := cpu[1] - cpu[0]; d > 0 {
				pair["tweets_per_cpu_s"] = float64(sz.firehose2-sz.firehose1) / d
			}
			pairs = append(pairs, pair)
		}
		var tps, startup, hwm, idle []float64
		for _, p := range pairs {
			if v, ok := p["tweets_per_cpu_s"].(float64); ok {
				tps = append(tps, v)
			}
		}
		for _, r := range runs {
			startup = append(startup, r.StartupCPUSeconds)
			hwm = append(hwm, r.PeakRSSMiB)
			idle = append(idle, r.IdleRSSMiB)
		}
		fh := map[string]any{
			"runs": runs, "pairs": pairs,
			"startup_cpu_s":     median(startup),
			"peak_rss_mib":      slices.Max(hwm),
			"idle_rss_mib":      median(idle),
			"all_checks_passed": allChecks(runs),
			"wall_tweets_per_s": wallRate(runs),
			"bytes_per_tweet":   runs[len(runs)-1].SenderBytesPerTweet,
		}
		// A pair whose larger run did not cost more CPU (noise on a tiny load) gives no figure.
		if len(tps) > 0 {
			fh["tweets_per_cpu_s"] = median(tps)
			fh["cpu_s_per_m_tweets"] = 1e6 / median(tps)
		}
		res["firehose"] = fh
		if err := write(); err != nil {
			return err
		}
	}

	if e.o.only["profile"] && e.o.perfBin != "" && e.o.perfOut != "" {
		e.logf("profile: %d tweets through the unstripped binary under perf record -g", sz.profile)
		r, err := e.serviceRun(ctx, scenario{name: "profile", bin: e.o.perfBin, n: sz.profile, matchEvery: 500, perfOut: e.o.perfOut})
		if err != nil {
			return err
		}
		res["profile"] = r
		// The same with every tweet matching, for where a written tweet's CPU goes.
		e.logf("profile: %d tweets, all matching, under perf record -g", sz.ours2)
		r, err = e.serviceRun(ctx, scenario{name: "profile-matching", bin: e.o.perfBin, n: sz.ours2, matchEvery: 1, perfOut: e.o.perfOut + ".matching"})
		if err != nil {
			return err
		}
		res["profile_matching"] = r
		if err := write(); err != nil {
			return err
		}
	}

	if e.o.only["rate"] {
		n := int64(1000 * sz.rateWindow.Seconds())
		e.logf("rate: 1,000 matched tweets/s for %s", sz.rateWindow)
		r, err := e.serviceRun(ctx, scenario{name: "rate-1k", bin: e.o.bin, n: n, matchEvery: 1, rate: 1000})
		if err != nil {
			return err
		}
		res["rate"] = r
		if err := write(); err != nil {
			return err
		}
	}

	if e.o.only["burst"] {
		n := int64(10000 * sz.burstWindow.Seconds())
		e.logf("burst: 10,000 matched tweets/s for %s while DynamoDB is throttled", sz.burstWindow)
		r, err := e.serviceRun(ctx, scenario{name: "burst-10k", bin: e.o.bin, n: n, matchEvery: 1, rate: 10000, throttleFor: sz.burstWindow})
		if err != nil {
			return err
		}
		res["burst"] = r
		if err := write(); err != nil {
			return err
		}
	}

	if e.o.only["seed"] && e.o.seed != "" {
		side := func(name string, sizes [2]int64, do func(n int64) (runResult, error)) (map[string]any, error) {
			var runs []runResult
			for _, n := range sizes {
				e.logf("seed comparison, %s: %d tweets, all matching", name, n)
				r, err := do(n)
				if err != nil {
					return nil, err
				}
				runs = append(runs, r)
			}
			out := map[string]any{"runs": runs, "n1": sizes[0], "n2": sizes[1]}
			var matched, items, requests, writes uint64
			var hwm []float64
			for _, r := range runs {
				matched += r.Matched
				items += r.Items
				requests += r.DynamoDBRequests
				writes += r.DynamoDBWriteRequests
				hwm = append(hwm, r.PeakRSSMiB)
			}
			dm := float64(runs[1].Matched) - float64(runs[0].Matched)
			if d := runs[1].CPUSeconds - runs[0].CPUSeconds; d > 0 && dm > 0 {
				out["cpu_s_per_matched"] = d / dm
			}
			if matched > 0 {
				out["items_kept_ratio"] = float64(items) / float64(matched)
				out["requests_per_item"] = float64(requests) / float64(matched)
				out["write_requests_per_item"] = float64(writes) / float64(matched)
			}
			if items > 0 {
				out["requests_per_kept_item"] = float64(requests) / float64(items)
			}
			out["peak_rss_mib"] = slices.Max(hwm)
			out["startup_cpu_s"] = median([]float64{runs[0].StartupCPUSeconds, runs[1].StartupCPUSeconds})
			out["all_checks_passed"] = allChecks(runs)
			return out, nil
		}
		ours, err := side("streammatch", [2]int64{sz.ours1, sz.ours2}, func(n int64) (runResult, error) {
			return e.serviceRun(ctx, scenario{name: fmt.Sprintf("ours-all-matching-%d", n), bin: e.o.bin, n: n, matchEvery: 1})
		})
		if err != nil {
			return err
		}
		seed, err := side("seed twitterstream.py", [2]int64{sz.seed1, sz.seed2}, func(n int64) (runResult, error) {
			return e.seedRun(ctx, fmt.Sprintf("seed-all-matching-%d", n), n)
		})
		if err != nil {
			return err
		}
		cmp := map[string]any{"ours": ours, "seed": seed}
		if a, ok := seed["cpu_s_per_matched"].(float64); ok {
			if b, ok := ours["cpu_s_per_matched"].(float64); ok && b > 0 {
				cmp["cpu_per_matched_seed_over_ours"] = a / b
			}
		}
		res["seed"] = cmp
		if err := write(); err != nil {
			return err
		}
	}
	return write()
}

// scenario is one run of the service.
type scenario struct {
	name        string
	bin         string
	n           int64
	matchEvery  int64
	rate        float64
	throttleFor time.Duration // throttle every DynamoDB write for this long after the start
	perfOut     string
}

// runResult is what one run measured. CPU and memory are the measured process's.
type runResult struct {
	Name       string  `json:"name"`
	Binary     string  `json:"binary"`
	N          int64   `json:"n"`
	Offered    int64   `json:"offered,omitempty"` // tweets the sender would have sent (a burst stops early)
	MatchEvery int64   `json:"match_every"`
	Rate       float64 `json:"rate,omitempty"`

	StartupCPUSeconds float64 `json:"startup_cpu_s"`
	CPUSeconds        float64 `json:"cpu_s"`
	ExitCPUSeconds    float64 `json:"exit_cpu_s"`
	WallSeconds       float64 `json:"wall_s"`
	HealthyHWMMiB     float64 `json:"healthy_hwm_mib,omitempty"` // VmHWM when /healthz first answered 200
	IdleRSSMiB        float64 `json:"idle_rss_mib"`
	IdleHWMMiB        float64 `json:"idle_hwm_mib"`
	MeanRSSMiB        float64 `json:"mean_rss_mib"`
	PeakRSSMiB        float64 `json:"peak_rss_mib"`
	HWMAtClearMiB     float64 `json:"hwm_at_clear_mib,omitempty"`
	LoadPeakRSSMiB    float64 `json:"load_peak_rss_mib"`
	StopSeconds       float64 `json:"stop_s"`
	ExitStatus        string  `json:"exit_status"`

	Received  uint64            `json:"received"`
	Matched   uint64            `json:"matched"`
	Unmatched uint64            `json:"unmatched"`
	Skipped   uint64            `json:"skipped"`
	Written   uint64            `json:"written"`
	Failed    uint64            `json:"failed"`
	SkippedBy map[string]uint64 `json:"skipped_by_reason,omitempty"`
	FailedBy  map[string]uint64 `json:"failed_by_reason,omitempty"`
	Items     uint64            `json:"items"`
	CountedBy string            `json:"items_counted_by"`

	AtClear *counters `json:"counters_at_clear,omitempty"`

	DynamoDBRequests      uint64         `json:"ddb_requests"`
	DynamoDBWriteRequests uint64         `json:"ddb_write_requests"`
	RequestsByOp          map[string]int `json:"ddb_requests_by_op"`
	Throttled             int            `json:"ddb_throttled,omitempty"`

	SenderConnects      int64   `json:"sender_connects"`
	SenderRejected      int64   `json:"sender_rejected"`
	SenderSendSeconds   float64 `json:"sender_send_s"`
	SenderBytesPerTweet float64 `json:"sender_bytes_per_tweet,omitempty"`

	Checks map[string]bool `json:"checks"`
}

type counters struct {
	Received        uint64            `json:"received"`
	Matched         uint64            `json:"matched"`
	Unmatched       uint64            `json:"unmatched"`
	Written         uint64            `json:"written"`
	Failed          uint64            `json:"failed"`
	Skipped         uint64            `json:"skipped"`
	SkippedByReason map[string]uint64 `json:"skipped_by_reason"`
	FailedByReason  map[string]uint64 `json:"failed_by_reason"`
}

type apiStatus struct {
	Health struct {
		Status string `json:"status"`
	} `json:"health"`
	Stream struct {
		State    string `json:"state"`
		Connects int    `json:"connects"`
	} `json:"stream"`
	Counters   counters `json:"counters"`
	QueueDepth int      `json:"queue_depth"`
}

type senderStatus struct {
	Connections int64   `json:"connections"`
	Connects    int64   `json:"connects"`
	Rejected    int64   `json:"rejected"`
	Written     int64   `json:"written"`
	MatchedSent int64   `json:"matched_sent"`
	Bytes       int64   `json:"bytes"`
	Done        bool    `json:"done"`
	SendSeconds float64 `json:"send_seconds"`
}

func (e *env) serviceRun(ctx context.Context, sc scenario) (runResult, error) {
	r := runResult{Name: sc.name, Binary: filepath.Base(sc.bin), N: sc.n, MatchEvery: sc.matchEvery, Rate: sc.rate, Checks: map[string]bool{}}
	if err := e.freshTable(ctx, table); err != nil {
		return r, err
	}
	proxy := e.proxy()
	defer proxy.Close()
	snd, err := e.startSender(ctx, sc.name, sc.n, sc.matchEvery, sc.rate)
	if err != nil {
		return r, err
	}
	defer snd.stop()

	httpAddr, err := freeAddr()
	if err != nil {
		return r, err
	}
	svc, err := e.start(sc.name+"-service", sc.bin, nil, append([]string{
		"PATH=" + os.Getenv("PATH"),
		"SOURCE=twitter", "DYNAMODBTABLE=" + table, "AWSREGION=" + region, "AWS_REGION=" + region,
		"FILTER=" + filter, "TWITTER_STREAM_URL=" + snd.url, "HTTP_ADDR=" + httpAddr,
		"AWS_ENDPOINT_URL=" + proxy.URL, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_EC2_METADATA_DISABLED=true", "LOG_LEVEL=warn", "GOMEMLIMIT=" + e.o.gomemlimit,
	}, streamCreds...))
	if err != nil {
		return r, err
	}
	defer e.stopProcess(svc, 0)
	pid := svc.pid()
	base := "http://" + httpAddr
	if err := waitUntil(ctx, 30*time.Second, func() (bool, error) {
		code, _ := httpGet(base+"/healthz", nil)
		return code == http.StatusOK, nil
	}); err != nil {
		return r, fmt.Errorf("%s: no 200 on /healthz: %w (see %s)", sc.name, err, e.logPath(sc.name+"-service"))
	}
	r.HealthyHWMMiB = statusMiB(pid, "VmHWM")
	if err := snd.waitConnected(ctx); err != nil {
		return r, fmt.Errorf("%s: the service did not connect to the sender: %w", sc.name, err)
	}
	if err := sleep(ctx, e.o.settle); err != nil {
		return r, err
	}
	if r.StartupCPUSeconds, err = cpuSeconds(pid, e.o.clkTck); err != nil {
		return r, err
	}
	r.IdleRSSMiB = statusMiB(pid, "VmRSS")
	r.IdleHWMMiB = statusMiB(pid, "VmHWM")

	var perf *proc
	if sc.perfOut != "" {
		perf, err = e.start("perf", "perf", nil, []string{"PATH=" + os.Getenv("PATH")}, "record", "-g", "-F", "999", "-p", strconv.Itoa(pid), "-o", sc.perfOut)
		if err != nil {
			return r, err
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return r, err
		}
	}
	if sc.throttleFor > 0 {
		proxy.ThrottleNext(-1)
	}
	if err := snd.trigger(); err != nil {
		return r, err
	}
	start := time.Now()
	timeout := 120*time.Second + time.Duration(float64(sc.n)/500*float64(time.Second))
	var rssSum float64
	var rssN int
	cleared := sc.throttleFor == 0
	target, targetKnown := sc.n, sc.throttleFor == 0
	var last apiStatus
	lastPoll := time.Time{}
	err = waitUntil(ctx, timeout, func() (bool, error) {
		if svc.exited() || !alive(pid) {
			return false, fmt.Errorf("the service exited (see %s)", e.logPath(sc.name+"-service"))
		}
		rss := statusMiB(pid, "VmRSS")
		rssSum += rss
		rssN++
		r.LoadPeakRSSMiB = max(r.LoadPeakRSSMiB, rss)
		if !cleared && time.Since(start) >= sc.throttleFor {
			r.HWMAtClearMiB = statusMiB(pid, "VmHWM")
			if code, err := httpGet(base+"/api/status", &last); code == http.StatusOK && err == nil {
				c := last.Counters
				r.AtClear = &c
			}
			// The burst is over: the sender stops offering tweets and DynamoDB recovers. The
			// service must then write everything it took off the stream.
			if err := snd.stopSending(); err != nil {
				return false, err
			}
			proxy.Clear()
			cleared = true
		}
		if cleared && !targetKnown {
			st, err := snd.status()
			if err != nil || !st.Done {
				return false, nil
			}
			target, targetKnown = st.Written, true
		}
		if time.Since(lastPoll) < 250*time.Millisecond {
			return false, nil
		}
		lastPoll = time.Now()
		var st apiStatus
		if code, err := httpGet(base+"/api/status", &st); code != http.StatusOK || err != nil {
			return false, nil
		}
		last = st
		c := st.Counters
		return targetKnown && c.Received >= uint64(target) && c.Written+c.Failed >= c.Matched && st.QueueDepth == 0, nil
	})
	r.WallSeconds = time.Since(start).Seconds()
	if err != nil {
		return r, fmt.Errorf("%s: waiting for received == %d and written == matched (last counters %+v): %w", sc.name, target, last.Counters, err)
	}
	r.N, r.Offered = target, sc.n
	if r.CPUSeconds, err = cpuSeconds(pid, e.o.clkTck); err != nil {
		return r, err
	}
	r.PeakRSSMiB = statusMiB(pid, "VmHWM")
	if rssN > 0 {
		r.MeanRSSMiB = rssSum / float64(rssN)
	}
	if perf != nil {
		e.stopProcess(perf, syscall.SIGINT)
	}
	var st apiStatus
	if _, err := httpGet(base+"/api/status", &st); err != nil {
		return r, err
	}
	c := st.Counters
	r.Received, r.Matched, r.Unmatched, r.Skipped, r.Written, r.Failed = c.Received, c.Matched, c.Unmatched, c.Skipped, c.Written, c.Failed
	r.SkippedBy, r.FailedBy = c.SkippedByReason, c.FailedByReason
	ps := proxy.Stats()
	r.RequestsByOp, r.Throttled = ps.Requests, ps.Throttled
	for op, k := range ps.Requests {
		r.DynamoDBRequests += uint64(k)
		if op == "BatchWriteItem" || op == "PutItem" {
			r.DynamoDBWriteRequests += uint64(k)
		}
	}
	ss, _ := snd.status()
	r.SenderConnects, r.SenderRejected, r.SenderSendSeconds = ss.Connects, ss.Rejected, ss.SendSeconds
	r.SenderBytesPerTweet = ss.BytesPerTweet()
	r.ExitCPUSeconds = e.stopProcess(svc, syscall.SIGTERM)
	r.StopSeconds = svc.stopSeconds
	r.ExitStatus = svc.cmd.ProcessState.String()
	if r.Items, r.CountedBy, err = e.countItems(ctx, table, r.Written); err != nil {
		return r, err
	}
	wantMatched := uint64(0)
	if sc.matchEvery > 0 {
		wantMatched = uint64(r.N / sc.matchEvery)
	}
	r.Checks["received_is_n"] = r.Received == uint64(r.N)
	r.Checks["received_adds_up"] = r.Received == r.Matched+r.Unmatched+r.Skipped
	r.Checks["matched_as_sent"] = r.Matched == wantMatched
	r.Checks["written_is_matched"] = r.Written == r.Matched && r.Failed == 0
	r.Checks["items_are_written"] = r.Items == r.Written
	r.Checks["one_connection"] = ss.Connects == 1 && ss.Rejected == 0
	e.logf("%s: %.2f CPU-s (%.2f at start-up), %.1f s, peak RSS %.1f MiB, received %d matched %d written %d items %d, %d DynamoDB requests, checks %v",
		sc.name, r.CPUSeconds, r.StartupCPUSeconds, r.WallSeconds, r.PeakRSSMiB, r.Received, r.Matched, r.Written, r.Items, r.DynamoDBRequests, allChecks([]runResult{r}))
	return r, nil
}

// seedRun runs the blog's script against the sender, every tweet matching, until the counting
// proxy has seen one PutItem per tweet.
func (e *env) seedRun(ctx context.Context, name string, n int64) (runResult, error) {
	r := runResult{Name: name, Binary: "python3 " + filepath.Base(e.o.seed), N: n, MatchEvery: 1, Checks: map[string]bool{}}
	const seedTable = "twitterStreamSeed"
	if err := e.freshTable(ctx, seedTable); err != nil {
		return r, err
	}
	proxy := e.proxy()
	defer proxy.Close()
	snd, err := e.startSender(ctx, name, n, 1, 0)
	if err != nil {
		return r, err
	}
	defer snd.stop()
	py, err := e.start(name+"-seed", e.o.python, nil, append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + e.o.work,
		"DYNAMODBTABLE=" + seedTable, "AWSREGION=" + region, "FILTER=" + filter,
		"TWITTER_STREAM_URL=" + snd.url, "AWS_ENDPOINT_URL=" + proxy.URL,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true",
	}, streamCreds...), "-u", e.o.seed)
	if err != nil {
		return r, err
	}
	defer e.stopProcess(py, 0)
	pid := py.pid()
	if err := snd.waitConnected(ctx); err != nil {
		return r, fmt.Errorf("%s: the seed did not connect to the sender: %w (see %s)", name, err, e.logPath(name+"-seed"))
	}
	if err := sleep(ctx, e.o.settle); err != nil {
		return r, err
	}
	if r.StartupCPUSeconds, err = cpuSeconds(pid, e.o.clkTck); err != nil {
		return r, err
	}
	r.IdleRSSMiB = statusMiB(pid, "VmRSS")
	r.IdleHWMMiB = statusMiB(pid, "VmHWM")
	if err := snd.trigger(); err != nil {
		return r, err
	}
	start := time.Now()
	var rssSum float64
	var rssN int
	puts := 0
	err = waitUntil(ctx, 120*time.Second+time.Duration(n)*200*time.Millisecond, func() (bool, error) {
		if !alive(pid) {
			return false, fmt.Errorf("the seed exited (see %s)", e.logPath(name+"-seed"))
		}
		rss := statusMiB(pid, "VmRSS")
		rssSum += rss
		rssN++
		r.LoadPeakRSSMiB = max(r.LoadPeakRSSMiB, rss)
		puts = proxy.Stats().Requests["PutItem"]
		return puts >= int(n), nil
	})
	r.WallSeconds = time.Since(start).Seconds()
	if err != nil {
		return r, fmt.Errorf("%s: waiting for %d PutItem requests (seen %d): %w", name, n, puts, err)
	}
	if r.CPUSeconds, err = cpuSeconds(pid, e.o.clkTck); err != nil {
		return r, err
	}
	r.PeakRSSMiB = statusMiB(pid, "VmHWM")
	r.MeanRSSMiB = rssSum / float64(max(rssN, 1))
	ss, _ := snd.status()
	ps := proxy.Stats()
	r.RequestsByOp = ps.Requests
	for op, k := range ps.Requests {
		r.DynamoDBRequests += uint64(k)
		if op == "BatchWriteItem" || op == "PutItem" {
			r.DynamoDBWriteRequests += uint64(k)
		}
	}
	// The seed counts nothing: every line it took off the stream became one put_item.
	r.Received, r.Matched, r.Written = uint64(ss.Written), uint64(ps.Requests["PutItem"]), uint64(ps.Requests["PutItem"])
	r.SenderConnects, r.SenderRejected, r.SenderSendSeconds = ss.Connects, ss.Rejected, ss.SendSeconds
	r.SenderBytesPerTweet = ss.BytesPerTweet()
	r.ExitCPUSeconds = e.stopProcess(py, syscall.SIGTERM)
	r.StopSeconds = py.stopSeconds
	r.ExitStatus = py.cmd.ProcessState.String()
	if r.Items, r.CountedBy, err = e.countItems(ctx, seedTable, r.Written); err != nil {
		return r, err
	}
	r.Checks["matched_is_n"] = r.Matched == uint64(n)
	r.Checks["one_connection"] = ss.Connects == 1 && ss.Rejected == 0
	e.logf("%s: %.2f CPU-s (%.2f at start-up), %.1f s, peak RSS %.1f MiB, %d PutItem, %d items kept",
		name, r.CPUSeconds, r.StartupCPUSeconds, r.WallSeconds, r.PeakRSSMiB, r.Matched, r.Items)
	return r, nil
}

// sender is a running bench/firehose.
type sender struct {
	e    *env
	proc *proc
	url  string
	n    int64
	name string
}

func (e *env) startSender(ctx context.Context, name string, n, matchEvery int64, rate float64) (*sender, error) {
	args := []string{
		"-corpus", e.o.corpus, "-n", strconv.FormatInt(n, 10), "-match-every", strconv.FormatInt(matchEvery, 10),
		"-match-text", filter, "-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-hold",
	}
	pr, pw := io.Pipe()
	p, err := e.start(name+"-sender", e.o.firehose, pw, append([]string{"PATH=" + os.Getenv("PATH")}, streamCreds...), args...)
	if err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	s := &sender{e: e, proc: p, n: n, name: name}
	select {
	case line, ok := <-lines:
		url, found := strings.CutPrefix(line, "listening on ")
		if !ok || !found {
			e.stopProcess(p, 0)
			return nil, fmt.Errorf("the sender did not start (see %s)", e.logPath(name+"-sender"))
		}
		s.url = url
	case <-time.After(30 * time.Second):
		e.stopProcess(p, 0)
		return nil, errors.New("the sender did not start within 30s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s, nil
}

// BytesPerTweet is the mean size of the lines sent, "\r\n" included.
func (st senderStatus) BytesPerTweet() float64 {
	if st.Written == 0 {
		return 0
	}
	return float64(st.Bytes) / float64(st.Written)
}

func (s *sender) status() (senderStatus, error) {
	var st senderStatus
	code, err := httpGet(s.url+"/_bench/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("sender status: HTTP %d", code)
	}
	return st, err
}

func (s *sender) waitConnected(ctx context.Context) error {
	return waitUntil(ctx, 60*time.Second, func() (bool, error) {
		st, err := s.status()
		if err != nil {
			return false, nil
		}
		if st.Rejected > 0 {
			return false, fmt.Errorf("the sender rejected %d connection(s): wrong signature?", st.Rejected)
		}
		return st.Connections >= 1, nil
	})
}

func (s *sender) stopSending() error {
	resp, err := http.Post(s.url+"/_bench/stop", "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (s *sender) trigger() error {
	resp, err := http.Post(s.url+"/_bench/start", "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("sender start: HTTP %d", resp.StatusCode)
	}
	return nil
}

func (s *sender) stop() { s.e.stopProcess(s.proc, syscall.SIGTERM) }

func (e *env) startMoto(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(addr)
	if _, err := e.start("moto", "moto_server", nil, os.Environ(), "-H", host, "-p", port); err != nil {
		return fmt.Errorf("moto_server: %w", err)
	}
	e.motoURL = "http://" + addr
	if err := waitUntil(ctx, 60*time.Second, func() (bool, error) {
		code, _ := httpGet(e.motoURL+"/moto-api/", nil)
		return code != 0, nil
	}); err != nil {
		return fmt.Errorf("moto_server did not answer: %w (see %s)", err, e.logPath("moto"))
	}
	e.ddb = dynamodb.New(dynamodb.Options{
		Region:       region,
		BaseEndpoint: aws.String(e.motoURL),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
	return nil
}

func (e *env) freshTable(ctx context.Context, name string) error {
	_, err := e.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete table %s: %w", name, err)
	}
	_, err = e.ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("user"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("date"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("user"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("date"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}

// scanLimit is the largest table countItems counts with a Scan: moto reads the whole table
// again for every 1 MB page of a Scan (and for every Query), so counting n items that way costs
// O(n^2): 20,000 items take 8 s on an idle machine, 150,000 several minutes.
const scanLimit = 10_000

// countItems counts the table's items with Scan, Select=COUNT, page by page, when about want
// items are expected, up to scanLimit, and checks that DescribeTable's ItemCount agrees. Above
// scanLimit it takes DescribeTable's ItemCount alone: moto computes it exactly from the items it
// holds (DynamoDB only refreshes it about every six hours).
func (e *env) countItems(ctx context.Context, name string, want uint64) (uint64, string, error) {
	out, err := e.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return 0, "", fmt.Errorf("describe table %s: %w", name, err)
	}
	described := uint64(aws.ToInt64(out.Table.ItemCount))
	if want > scanLimit {
		return described, "DescribeTable ItemCount (moto: exact)", nil
	}
	var n uint64
	in := &dynamodb.ScanInput{TableName: aws.String(name), Select: types.SelectCount}
	for {
		out, err := e.ddb.Scan(ctx, in)
		if err != nil {
			return 0, "", fmt.Errorf("scan %s: %w", name, err)
		}
		n += uint64(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if n != described {
		return 0, "", fmt.Errorf("table %s: Scan counts %d items, DescribeTable %d", name, n, described)
	}
	return n, "Scan Select=COUNT (= DescribeTable ItemCount)", nil
}

// proxy starts an internal/faultproxy in front of moto: it counts every request by operation
// and can throttle the writes.
func (e *env) proxy() *faultproxy.Proxy {
	t := &tb{}
	e.mu.Lock()
	e.tbs = append(e.tbs, t)
	e.mu.Unlock()
	return faultproxy.Start(t, e.motoURL)
}

// tb is the testing.TB that faultproxy.Start asks for, for a command: a failure panics (it can
// only fail to listen on a loopback port) and clean-ups run when the command ends. The embedded
// interface is nil; faultproxy.Start calls only the methods defined here.
type tb struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (t *tb) Helper()                           {}
func (t *tb) Cleanup(f func())                  { t.mu.Lock(); t.cleanups = append(t.cleanups, f); t.mu.Unlock() }
func (t *tb) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *tb) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *tb) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *tb) Logf(format string, args ...any)   {}
func (t *tb) Log(args ...any)                   {}
func (t *tb) Name() string                      { return "e2e" }

func (t *tb) runCleanups() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (e *env) logPath(name string) string { return filepath.Join(e.o.work, name+".log") }

// proc is a started process; done is closed once it has been waited for.
type proc struct {
	cmd         *exec.Cmd
	done        chan struct{}
	stopSeconds float64 // from the stop signal to the end
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start runs a command in its own process group with exactly env (nothing inherited), its
// output in WORK/name.log (stdout to out instead, when given). Credentials travel in env, never
// on a command line.
func (e *env) start(name, bin string, out io.WriteCloser, env []string, args ...string) (*proc, error) {
	f, err := os.Create(e.logPath(name))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if out != nil {
		cmd.Stdout = out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		f.Close()
		if out != nil {
			out.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// stopProcess sends sig (0: SIGKILL at once) to the process and waits for it to end, killing
// its process group after 40 s (the service drains its queue on SIGTERM; stopTimeout is 30 s).
// It returns the CPU time of the whole process from wait4's rusage, when known.
func (e *env) stopProcess(p *proc, sig syscall.Signal) float64 {
	if p == nil {
		return 0
	}
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	if !p.exited() {
		t0 := time.Now()
		_ = syscall.Kill(p.pid(), sig)
		select {
		case <-p.done:
		case <-time.After(40 * time.Second):
			e.logf("%s did not end within 40s of signal %d: killed", filepath.Base(p.cmd.Path), sig)
		}
		p.stopSeconds = time.Since(t0).Seconds()
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		return 0
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	return 0
}

func (e *env) cleanup() {
	e.mu.Lock()
	procs, tbs := e.procs, e.tbs
	e.mu.Unlock()
	for _, t := range tbs {
		t.runCleanups()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if !procs[i].exited() {
			_ = syscall.Kill(-procs[i].pid(), syscall.SIGKILL)
		}
	}
}

// alive reports whether pid is a running process (not a zombie that was not reaped yet).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// cpuSeconds is the process's utime+stime (fields 14 and 15 of /proc/PID/stat, all threads,
// live and exited), in seconds.
func cpuSeconds(pid int, clkTck float64) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) is f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return (ut + st) / clkTck, nil
}

// statusMiB reads a "kB" field of /proc/PID/status (VmRSS, VmHWM) in MiB; 0 if absent.
func statusMiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

var client = &http.Client{Timeout: 5 * time.Second}

// httpGet GETs url and decodes a JSON answer into v (when not nil); it returns the status code,
// 0 when nothing answered.
func httpGet(url string, v any) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}

// waitUntil polls cond every 50 ms until it is true, fails, or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached within %s", timeout)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func allChecks(runs []runResult) bool {
	for _, r := range runs {
		for _, ok := range r.Checks {
			if !ok {
				return false
			}
		}
	}
	return true
}

func wallRate(runs []runResult) float64 {
	var n, s float64
	for _, r := range runs {
		n += float64(r.N)
		s += r.WallSeconds
	}
	if s == 0 {
		return 0
	}
	return n / s
}
