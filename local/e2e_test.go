package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/internal/syncbuf"
)

// testCreds are distinctive values with characters that URL and JSON encoding change, so the
// leak checks can look for every encoded form.
var testCreds = secretValues{
	"CONSUMERKEY":       "CK-localleak-7f3a9c",
	"CONSUMERSECRETKEY": "CS-localleak-b41e08+/=",
	"ACCESSTOKEN":       "AT-localleak-2d6f51",
	"ACCESSTOKENSECRET": "ATS-localleak-c98e17&?<",
}

// testFilter is what the synthetic stream matches; items in DynamoDB must match it too.
const testFilter = "fargate,secrets manager"

var (
	buildOnce sync.Once
	binPath   string
	binErr    error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// streammatchBinary builds the service once for the fingerprint checks.
func streammatchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "local-test-bin-*")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "streammatch")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// requireMoto skips without moto_server, unless CI is set.
func requireMoto(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("moto_server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("moto_server is not on PATH (CI must install it): %v", err)
		}
		t.Skipf("moto_server is not on PATH: %v", err)
	}
}

// writeSecretsFile writes testCreds as a dotenv file readable by its owner only.
func writeSecretsFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test credentials\n")
	for _, k := range secretKeys {
		fmt.Fprintf(&b, "%s=%s\n", k, testCreds[k])
	}
	p := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testGetenv is the real environment without the variables that would redirect local.
func testGetenv(overrides map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		switch k {
		case "AWS_ENDPOINT_URL", "LOCALSTACK_AUTH_TOKEN":
			return ""
		}
		return os.Getenv(k)
	}
}

// localRun is one run() of local in the background.
type localRun struct {
	t      *testing.T
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool

	// creds are the secret values the run was started with (testCreds unless a test sets
	// them), for the leak check.
	creds map[string]string

	mu        sync.Mutex
	responses []string            // every HTTP answer seen, for the leak check
	rotated   []map[string]string // secret values put by -rotate-after, for the leak check
}

func startLocal(t *testing.T, args ...string) *localRun {
	t.Helper()
	r := &localRun{t: t, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan error, 1), creds: testCreds}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- run(ctx, args, testGetenv(nil), r.stdout, r.stderr) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels the run (as Ctrl-C does) and waits for it to tear down.
func (r *localRun) stop() error {
	if r.ended {
		return r.err
	}
	r.cancel()
	select {
	case r.err = <-r.done:
	case <-time.After(3 * time.Minute):
		r.t.Fatalf("local did not stop within 3 minutes; stdout:\n%s", tail(r.stdout.String(), 3000))
	}
	r.ended = true
	return r.err
}

// wait returns run's result without cancelling it (for runs that end on their own).
func (r *localRun) wait(timeout time.Duration) error {
	select {
	case r.err = <-r.done:
		r.ended = true
		return r.err
	case <-time.After(timeout):
		r.t.Fatalf("local did not end within %s; stdout:\n%s\nstderr:\n%s", timeout, tail(r.stdout.String(), 3000), r.stderr.String())
		return nil
	}
}

// waitLine waits until stdout has a line matching re and returns its submatches.
func (r *localRun) waitLine(re *regexp.Regexp, timeout time.Duration) []string {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(r.stdout.String()); m != nil {
			return m
		}
		select {
		case err := <-r.done:
			r.ended, r.err = true, err
			r.t.Fatalf("local ended (%v) before printing %q; stdout:\n%s\nstderr:\n%s", err, re, tail(r.stdout.String(), 4000), r.stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	r.t.Fatalf("no line matching %q within %s; stdout:\n%s\nstderr:\n%s", re, timeout, tail(r.stdout.String(), 4000), r.stderr.String())
	return nil
}

// fetch makes a request and records the whole answer for the leak check.
func (r *localRun) fetch(method, u string, header map[string]string) (int, string) {
	r.t.Helper()
	code, body, err := r.tryFetch(method, u, header)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, u, err)
	}
	return code, body
}

// tryFetch is fetch for an address that may not answer (the page while a service replaces
// the app).
func (r *localRun) tryFetch(method, u string, header map[string]string) (int, string, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var all strings.Builder
	fmt.Fprintf(&all, "%s %s -> %d\n", method, u, resp.StatusCode)
	for k, vs := range resp.Header {
		fmt.Fprintf(&all, "%s: %s\n", k, strings.Join(vs, ", "))
	}
	all.Write(b)
	r.mu.Lock()
	r.responses = append(r.responses, all.String())
	r.mu.Unlock()
	return resp.StatusCode, string(b), nil
}

// apiStatus is the part of /api/status the tests read.
type apiStatus struct {
	Counters struct{ Received, Matched, Written uint64 }
	Secrets  []apiSecret
}

// apiSecret is one of /api/status's secrets[]. State is nil when the app does not report it.
type apiSecret struct {
	Name          string
	Set           bool
	Fingerprint   string
	Source        string
	State         *string `json:"state"`
	Detail        string
	RotatedAt     string `json:"rotated_at"`
	TaskStartedAt string `json:"task_started_at"`
}

func (s apiSecret) state() string {
	if s.State == nil {
		return ""
	}
	return *s.State
}

func (r *localRun) status(base string) apiStatus {
	r.t.Helper()
	st, err := r.tryStatus(base)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

func (r *localRun) tryStatus(base string) (apiStatus, error) {
	code, body, err := r.tryFetch(http.MethodGet, base+"/api/status", nil)
	if err != nil {
		return apiStatus{}, err
	}
	if code != http.StatusOK {
		return apiStatus{}, fmt.Errorf("/api/status = %d %s", code, body)
	}
	var st apiStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return apiStatus{}, fmt.Errorf("decode /api/status: %v\n%s", err, body)
	}
	return st, nil
}

// waitStatus polls /api/status until cond holds.
func (r *localRun) waitStatus(base, what string, cond func(apiStatus) bool) apiStatus {
	r.t.Helper()
	return r.waitStatusFor(base, what, 90*time.Second, false, cond)
}

// waitStatusFor polls /api/status for up to timeout until cond holds; with tolerant, a page
// that does not answer (an app being replaced) is polled again rather than a failure.
func (r *localRun) waitStatusFor(base, what string, timeout time.Duration, tolerant bool, cond func(apiStatus) bool) apiStatus {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	var st apiStatus
	for time.Now().Before(deadline) {
		got, err := r.tryStatus(base)
		switch {
		case err != nil && !tolerant:
			r.t.Fatal(err)
		case err == nil:
			if st = got; cond(st) {
				return st
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	r.t.Fatalf("%s: not reached within %s; last status %+v\nstdout:\n%s", what, timeout, st, tail(r.stdout.String(), 3000))
	return st
}

var (
	reEndpoint = regexp.MustCompile(`AWS endpoint up: .* at (http://\S+)`)
	rePage     = regexp.MustCompile(`status page: (http://[0-9.:]+)/`)
	rePID      = regexp.MustCompile(`app started: .*pid (\d+)`)
	reMetadata = regexp.MustCompile(`task metadata v4 at (http://\S+)`)
	reSim      = regexp.MustCompile(`stream simulator: (http://\S+) `)
	reSummary  = regexp.MustCompile(`summary: received (\d+), matched (\d+), written (\d+)`)
)

// checkRunningTask checks a healthy run: fingerprints, items, the app's environment, and the
// endpoints' answers (recorded for the leak check).
func checkRunningTask(t *testing.T, r *localRun) {
	t.Helper()
	endpoint := r.waitLine(reEndpoint, 2*time.Minute)[1]
	base := r.waitLine(rePage, 4*time.Minute)[1]
	pid, _ := strconv.Atoi(r.waitLine(rePID, time.Second)[1])

	st := r.waitStatus(base, "fingerprints computed and 3 items written", func(st apiStatus) bool {
		done := len(st.Secrets) == 4
		for _, s := range st.Secrets {
			done = done && s.Fingerprint != ""
		}
		return done && st.Counters.Written >= 3
	})

	t.Run("fingerprints equal streammatch fingerprint", func(t *testing.T) {
		checkFingerprints(t, st, testCreds)
	})

	t.Run("matching items are in DynamoDB", func(t *testing.T) {
		db := dynamodb.NewFromConfig(emulatorConfig(endpoint, "us-east-1"))
		out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("twitterStream")})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if len(out.Items) < 3 {
			t.Fatalf("table holds %d items, want at least 3", len(out.Items))
		}
		// The tracked phrase may be in a hashtag, a mention or a URL rather than the text, so
		// the check reads the matched phrases the app stored with each item.
		for _, it := range out.Items {
			matched, _ := it["matched"].(*ddbtypes.AttributeValueMemberSS)
			if matched == nil || len(matched.Value) == 0 {
				t.Fatalf("item without matched phrases: %v", it)
			}
			for _, m := range matched.Value {
				if !strings.Contains(","+testFilter+",", ","+m+",") {
					t.Errorf("item matched %q, which is not a phrase of the filter %q", m, testFilter)
				}
			}
		}
	})

	var creds map[string]string
	t.Run("the app's environment has the secrets and no AWS root keys", func(t *testing.T) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatalf("read the app's environment: %v", err)
		}
		env := map[string]string{}
		for _, kv := range strings.Split(string(raw), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
		for _, k := range secretKeys {
			if env[k] != testCreds[k] {
				t.Errorf("%s in the app's environment is not the value from the secrets file", k)
			}
		}
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
			if _, ok := env[k]; ok {
				t.Errorf("the app's environment holds %s; it must get credentials from the container endpoint only", k)
			}
		}
		for _, k := range []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "ECS_CONTAINER_METADATA_URI_V4", "TWITTER_STREAM_URL", "AWS_ENDPOINT_URL", "DYNAMODBTABLE", "FILTER"} {
			if env[k] == "" {
				t.Errorf("the app's environment lacks %s", k)
			}
		}
		if env["FILTER"] != testFilter {
			t.Errorf("FILTER = %q, want %q (the taskdef placeholder filled from -filter)", env["FILTER"], testFilter)
		}
		checkSecretSources(t, env["SECRET_SOURCES"])
		if env["ROTATION_CHECK_INTERVAL"] == "" {
			t.Errorf("the app's environment lacks ROTATION_CHECK_INTERVAL")
		}
		creds = env
	})

	t.Run("every endpoint answers", func(t *testing.T) {
		for _, p := range []string{"/", "/healthz", "/api/status", "/no-such-page", "/api/no-such"} {
			r.fetch(http.MethodGet, base+p, nil)
		}
		meta := r.waitLine(reMetadata, time.Second)[1]
		code, body := r.fetch(http.MethodGet, meta+"/task", nil)
		checkStartTimes(t, meta, r.fetch)
		var task struct {
			Family, Revision, LaunchType, TaskARN, KnownStatus string
			Containers                                         []struct{ Name, DockerId string }
		}
		if err := json.Unmarshal([]byte(body), &task); code != http.StatusOK || err != nil {
			t.Fatalf("metadata /task = %d %s (%v)", code, body, err)
		}
		if task.Family != "streammatch" || task.LaunchType != "FARGATE" || task.KnownStatus != "RUNNING" ||
			!strings.Contains(task.TaskARN, ":task/streammatch/") || len(task.Containers) != 1 || task.Containers[0].Name != "streammatch" {
			t.Errorf("metadata /task = %s", body)
		}
		r.fetch(http.MethodGet, meta+"/stats", nil)
		if u := creds["AWS_CONTAINER_CREDENTIALS_FULL_URI"]; u != "" {
			if code, _ := r.fetch(http.MethodGet, u, nil); code != http.StatusUnauthorized {
				t.Errorf("credentials without the token = %d, want 401", code)
			}
			if code, body := r.fetch(http.MethodGet, u, map[string]string{"Authorization": creds["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}); code != http.StatusOK || !strings.Contains(body, "streammatch-task-role") {
				t.Errorf("credentials with the token = %d %s, want 200 with the task role", code, body)
			}
		}
		sim := r.waitLine(reSim, time.Second)[1]
		r.fetch(http.MethodGet, sim+"/_local/status", nil)
		r.fetch(http.MethodPost, sim+"/1.1/statuses/filter.json?track=x", nil) // unsigned: 401
		r.fetch(http.MethodGet, sim+"/nowhere", nil)
	})
}

// reSecretSource is the valueFrom of one of the four keys of local's secret.
var reSecretSource = regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-[A-Za-z0-9]{6}:([A-Z]+)::$`)

// checkSecretSources checks the app's SECRET_SOURCES: each secret's name mapped to the exact
// valueFrom of its taskdef entry, rendered after the placeholders were filled.
func checkSecretSources(t *testing.T, raw string) {
	t.Helper()
	var sources map[string]string
	if err := json.Unmarshal([]byte(raw), &sources); err != nil {
		t.Fatalf("SECRET_SOURCES %q is not a JSON object: %v", raw, err)
	}
	if len(sources) != len(secretKeys) {
		t.Errorf("SECRET_SOURCES names %d secrets, want %d: %s", len(sources), len(secretKeys), raw)
	}
	for _, k := range secretKeys {
		if m := reSecretSource.FindStringSubmatch(sources[k]); m == nil || m[1] != k {
			t.Errorf("SECRET_SOURCES[%s] = %q, want the secret's ARN with :%s::", k, sources[k], k)
		}
	}
}

// taskTimes are the start times of a task's metadata v4 answers.
type taskTimes struct {
	PullStartedAt, PullStoppedAt, StartedAt time.Time
	TaskARN                                 string
}

// checkStartTimes reads the task's and the container's metadata and checks that they carry
// the start as it happened: PullStartedAt <= PullStoppedAt <= the container's StartedAt, the
// same StartedAt on the container's endpoint and in /task.
func checkStartTimes(t *testing.T, meta string, fetch func(method, u string, header map[string]string) (int, string)) taskTimes {
	t.Helper()
	_, body := fetch(http.MethodGet, meta+"/task", nil)
	var task struct {
		TaskARN                      string
		PullStartedAt, PullStoppedAt *time.Time
		Containers                   []struct{ StartedAt *time.Time }
	}
	if err := json.Unmarshal([]byte(body), &task); err != nil {
		t.Fatalf("metadata /task: %v\n%s", err, body)
	}
	_, body = fetch(http.MethodGet, meta, nil)
	var c struct{ StartedAt *time.Time }
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatalf("metadata: %v\n%s", err, body)
	}
	if task.PullStartedAt == nil || task.PullStoppedAt == nil || len(task.Containers) != 1 || task.Containers[0].StartedAt == nil || c.StartedAt == nil {
		t.Fatalf("metadata lacks a start time: /task %+v, container StartedAt %v", task, c.StartedAt)
	}
	started := *c.StartedAt
	if !task.Containers[0].StartedAt.Equal(started) {
		t.Errorf("/task Containers[0].StartedAt %v, container endpoint StartedAt %v: want the same", task.Containers[0].StartedAt, started)
	}
	if task.PullStartedAt.After(*task.PullStoppedAt) || task.PullStoppedAt.After(started) {
		t.Errorf("PullStartedAt %v, PullStoppedAt %v, StartedAt %v: want them in this order", task.PullStartedAt, task.PullStoppedAt, started)
	}
	if time.Since(started) > 10*time.Minute || started.After(time.Now()) {
		t.Errorf("StartedAt %v is not the app's real start", started)
	}
	return taskTimes{PullStartedAt: *task.PullStartedAt, PullStoppedAt: *task.PullStoppedAt, StartedAt: started, TaskARN: task.TaskARN}
}

// checkFingerprints checks that the page's fingerprints are those `streammatch fingerprint`
// computes from values (with -source when the page names the secret's source, as fp3 needs).
func checkFingerprints(t *testing.T, st apiStatus, values map[string]string) {
	t.Helper()
	bin := streammatchBinary(t)
	for _, s := range st.Secrets {
		args := []string{"fingerprint"}
		if s.Source != "" {
			args = append(args, "-source", s.Source)
		}
		cmd := exec.Command(bin, append(args, s.Name)...)
		cmd.Stdin = strings.NewReader(values[s.Name])
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("streammatch %s: %v", strings.Join(append(args, s.Name), " "), err)
		}
		if want := strings.TrimSpace(string(out)); s.Fingerprint != want {
			t.Errorf("page fingerprint of %s = %q, want %q (streammatch fingerprint)", s.Name, s.Fingerprint, want)
		}
	}
}

// assertNoLeak looks for every secret value, and its encodings, in local's output (which
// includes the app's) and in every HTTP answer.
func (r *localRun) assertNoLeak(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	haystacks := map[string]string{"stdout": r.stdout.String(), "stderr": r.stderr.String(), "HTTP answers": strings.Join(r.responses, "\n")}
	sets := append([]map[string]string{r.creds}, r.rotated...)
	r.mu.Unlock()
	for i, set := range sets {
		for _, k := range slices.Sorted(maps.Keys(set)) {
			assertValueNotIn(t, haystacks, k, set[k], i > 0)
		}
	}
}

// assertValueNotIn looks for the value v of the secret k, and its encodings, in haystacks.
func assertValueNotIn(t *testing.T, haystacks map[string]string, k, v string, rotated bool) {
	t.Helper()
	if rotated {
		k += " (rotated)"
	}
	js, _ := json.Marshal(v)
	forms := map[string]string{
		"plain": v, "base64": base64.StdEncoding.EncodeToString([]byte(v)), "base64url": base64.URLEncoding.EncodeToString([]byte(v)),
		"base64 raw": base64.RawStdEncoding.EncodeToString([]byte(v)), "query-escaped": url.QueryEscape(v),
		"path-escaped": url.PathEscape(v), "JSON": strings.Trim(string(js), `"`), "hex": hex.EncodeToString([]byte(v)),
	}
	for where, text := range haystacks {
		for form, needle := range forms {
			if strings.Contains(text, needle) {
				t.Errorf("%s holds the %s form of %s", where, form, k)
			}
		}
	}
}

func TestLocal_ProcessModeEndToEnd(t *testing.T) {
	requireMoto(t)
	r := startLocal(t, "-aws", "moto", "-run", "process", "-addr", "127.0.0.1:0", "-secrets", writeSecretsFile(t),
		"-filter", testFilter, "-rate", "40", "-keepalive", "1s")
	checkRunningTask(t, r)
	if err := r.stop(); err != nil {
		t.Errorf("run after Ctrl-C = %v, want nil", err)
	}
	checkSummaryAndTeardown(t, r)
	r.assertNoLeak(t)
}

// checkSummaryAndTeardown checks the one-line summary and the teardown line.
func checkSummaryAndTeardown(t *testing.T, r *localRun) {
	t.Helper()
	out := r.stdout.String()
	m := reSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line; stdout:\n%s", tail(out, 3000))
	}
	if w, _ := strconv.Atoi(m[3]); w < 3 {
		t.Errorf("summary says written %s, want at least 3", m[3])
	}
	for _, want := range []string{"DynamoDB table twitterStream", "aws dynamodb scan --table-name twitterStream --endpoint-url http://", "torn down everything"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
}

func TestLocal_BrokenJSONKeyStopsBeforeTheAppStarts(t *testing.T) {
	requireMoto(t)
	moto := mototest.Start(t).URL
	orig, err := os.ReadFile("../taskdef.json")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(orig), ":CONSUMERKEY::", ":CONSUMERKEYX::", 1)
	if broken == string(orig) {
		t.Fatal("taskdef.json has no :CONSUMERKEY:: reference to break")
	}
	td := filepath.Join(t.TempDir(), "taskdef.json")
	if err := os.WriteFile(td, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}

	r := startLocal(t, "-aws", moto, "-run", "process", "-addr", "127.0.0.1:0", "-secrets", writeSecretsFile(t), "-taskdef", td)
	err = r.wait(2 * time.Minute)
	if err == nil {
		t.Fatalf("run succeeded with a broken JSON key; stdout:\n%s", r.stdout.String())
	}
	if code := exitCode(err, io.Discard); code == 0 {
		t.Errorf("exit code = 0, want non-zero")
	}
	stderr := r.stderr.String()
	for _, want := range []string{
		"ResourceInitializationError: unable to pull secrets",
		"did not contain json key CONSUMERKEYX",
		":secret:streammatch/twitter",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q; got:\n%s", want, stderr)
		}
	}
	if out := r.stdout.String(); strings.Contains(out, "app started") || strings.Contains(out, "building the app") {
		t.Errorf("the app was built or started despite the broken key; stdout:\n%s", out)
	}
	db := dynamodb.NewFromConfig(emulatorConfig(moto, "us-east-1"))
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("twitterStream"), Select: ddbtypes.SelectCount})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if out.Count != 0 {
		t.Errorf("table holds %d items after a run that must not start, want 0", out.Count)
	}
	r.assertNoLeak(t)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
