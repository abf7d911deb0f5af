package main

// The end-to-end harness: run() (or the built binary) against moto_server and the stream
// simulator, with switches for the faults the tests inject on both sides.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/faultproxy"
	"github.com/streammatch/streammatch/internal/leakcheck"
	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/store"
	"github.com/streammatch/streammatch/twittersim"
)

// TestMain gives the whole package the AWS environment of a developer's laptop with test
// keys: the SDK's default chain reads credentials from the process environment (on Fargate
// they come from the container credentials endpoint instead). Setting it once here, rather
// than with t.Setenv in each test, lets the slow end-to-end tests run in parallel.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "streammatch-test-aws")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	none := filepath.Join(dir, "none")
	for name, value := range awsTestEnv(none) {
		os.Setenv(name, value)
	}
	for _, name := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		os.Unsetenv(name)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// awsTestEnv is the AWS part of the test environment; a child process gets it too.
func awsTestEnv(none string) map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
}

// distinctive secret values: the leak checks search every output for them.
var testCreds = twittersim.Credentials{
	ConsumerKey:       "CK-leakcheck-7f3a9c",
	ConsumerSecret:    "CS-leakcheck-b41e08+/=",
	AccessToken:       "AT-leakcheck-2d6f51",
	AccessTokenSecret: "ATS-leakcheck-c98e17&?",
}

// fixture is what a service runs against: moto_server with the blog's table, optionally the
// DynamoDB fault proxy in front of it, and the stream simulator behind a front that can play
// scripted answers first.
type fixture struct {
	t     *testing.T
	moto  *mototest.Server
	ddb   *dynamodb.Client // straight to moto, for checking the table
	table string
	proxy *faultproxy.Proxy // nil unless withDynamoProxy
	sim   *twittersim.Server
	front *streamFront
	env   map[string]string
}

// serviceOption changes a fixture before the service starts.
type serviceOption func(*setup)

type setup struct {
	sim   twittersim.Config
	env   map[string]string
	proxy bool
}

// withEnv sets variables of the service's environment (name, value, name, value...).
func withEnv(kv ...string) serviceOption {
	return func(s *setup) {
		for i := 0; i+1 < len(kv); i += 2 {
			s.env[kv[i]] = kv[i+1]
		}
	}
}

// withSim changes the simulator's configuration.
func withSim(f func(*twittersim.Config)) serviceOption { return func(s *setup) { f(&s.sim) } }

// withDynamoProxy sends the service's DynamoDB calls through a faultproxy.
func withDynamoProxy() serviceOption { return func(s *setup) { s.proxy = true } }

// newFixture starts moto_server, creates the blog's table, starts the simulator with
// testCreds, and returns the environment a service with creds would get.
func newFixture(t *testing.T, creds twittersim.Credentials, opts ...serviceOption) *fixture {
	t.Helper()
	st := setup{
		sim: twittersim.Config{Rate: 40, KeepAlive: 200 * time.Millisecond, Seed: 7, NoticeEvery: 10},
		env: map[string]string{},
	}
	for _, o := range opts {
		o(&st)
	}
	st.sim.Credentials = testCreds

	f := &fixture{t: t, moto: mototest.Start(t), table: "twitterStream"}
	f.ddb = dynamodb.NewFromConfig(f.moto.AWSConfig(t))
	_, err := store.EnsureTable(context.Background(), f.ddb, f.table)
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	endpoint := f.moto.URL
	if st.proxy {
		f.proxy = faultproxy.Start(t, f.moto.URL)
		endpoint = f.proxy.URL
	}

	f.sim, err = twittersim.New(st.sim)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	f.front = &streamFront{sim: f.sim}
	ts := httptest.NewServer(f.front)
	t.Cleanup(func() { f.sim.Close(); ts.Close() })

	f.env = map[string]string{
		"DYNAMODBTABLE":      f.table,
		"AWSREGION":          mototest.Region,
		"FILTER":             "fargate,secrets manager,streammatch",
		"CONSUMERKEY":        creds.ConsumerKey,
		"CONSUMERSECRETKEY":  creds.ConsumerSecret,
		"ACCESSTOKEN":        creds.AccessToken,
		"ACCESSTOKENSECRET":  creds.AccessTokenSecret,
		"TWITTER_STREAM_URL": ts.URL,
		"HTTP_ADDR":          "127.0.0.1:0",
		"AWS_ENDPOINT_URL":   endpoint,
		"LOG_LEVEL":          "debug",
	}
	for k, v := range st.env {
		f.env[k] = v
	}
	return f
}

// streamFront answers the stream endpoint with scripted handlers first, one per request, and
// then hands every request to the simulator. It plays the faults the simulator has no switch
// for: a connection cut before the headers, an empty body.
type streamFront struct {
	sim *twittersim.Server

	mu       sync.Mutex
	script   []http.HandlerFunc
	requests int
}

func (f *streamFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	var next http.HandlerFunc
	if len(f.script) > 0 {
		next, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	if next != nil {
		next(w, r)
		return
	}
	f.sim.ServeHTTP(w, r)
}

// then queues scripted answers for the next requests.
func (f *streamFront) then(h ...http.HandlerFunc) {
	f.mu.Lock()
	f.script = append(f.script, h...)
	f.mu.Unlock()
}

// Requests counts every request to the stream endpoint, scripted or not.
func (f *streamFront) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// cutBeforeHeaders closes the connection without answering: the client sees a network error.
func cutBeforeHeaders(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// emptyBody answers 200 with no content at all.
func emptyBody(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

// scanIDs returns how many items of the table hold each message id (the sort key ends in it).
func (f *fixture) scanIDs() map[string]int {
	f.t.Helper()
	ids := map[string]int{}
	p := dynamodb.NewScanPaginator(f.ddb, &dynamodb.ScanInput{TableName: aws.String(f.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			f.t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			date, _ := it["date"].(*types.AttributeValueMemberS)
			if date == nil {
				f.t.Errorf("item without a date key: %v", it)
				continue
			}
			_, id, _ := strings.Cut(date.Value, "#")
			ids[id]++
		}
	}
	return ids
}

// service is one run() of the whole program against a fixture.
type service struct {
	*fixture
	stdout  *syncbuf.Buffer
	stderr  *syncbuf.Buffer
	base    string // http://127.0.0.1:PORT
	cancel  context.CancelFunc
	done    chan error
	bodies  []string // every HTTP response seen, headers and body, for the leak check
	bodyMu  sync.Mutex
	stopped bool
}

// startService starts a fixture and runs the program with the given credentials.
func startService(t *testing.T, creds twittersim.Credentials, opts ...serviceOption) *service {
	t.Helper()
	return newFixture(t, creds, opts...).start()
}

// start runs the program against the fixture. A fixture may be run again after stop, as a
// restarted task runs against the same table and stream.
func (f *fixture) start() *service {
	f.t.Helper()
	s := &service{fixture: f, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- run(runCtx, nil, envOf(f.env), strings.NewReader(""), s.stdout, s.stderr) }()
	f.t.Cleanup(s.stop)
	s.base = "http://" + waitListening(f.t, s.stdout, s.done)
	return s
}

// waitListening reads the JSON logs until the server says where it listens.
func waitListening(t *testing.T, stdout fmt.Stringer, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(stdout.String(), "\n") {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http server listening" && rec.Addr != "" {
				return rec.Addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the service ended before listening: %v\noutput:\n%s", err, stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not log its address; stdout:\n%s", stdout.String())
	return ""
}

// get fetches a path and records the whole response for the leak check.
func (s *service) get(path string) (int, string) {
	s.t.Helper()
	code, _, body := s.fetch(http.MethodGet, path)
	return code, body
}

// fetch makes a request and records the whole response for the leak check.
func (s *service) fetch(method, path string) (int, http.Header, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var hdr strings.Builder
	_ = resp.Header.Write(&hdr)
	s.bodyMu.Lock()
	s.bodies = append(s.bodies, method+" "+path+"\n"+hdr.String()+"\n"+string(body))
	s.bodyMu.Unlock()
	return resp.StatusCode, resp.Header, string(body)
}

type apiStatus struct {
	Health struct{ Status, Detail string } `json:"health"`
	Stream struct {
		State     string        `json:"state"`
		LastError string        `json:"last_error"`
		Connects  int64         `json:"connects"`
		RetryIn   time.Duration `json:"retry_in_ns"`
	} `json:"stream"`
	Counters struct {
		Received, Matched, Unmatched, Written, Failed, Skipped uint64
		SkippedByReason                                        map[string]uint64 `json:"skipped_by_reason"`
		FailedByReason                                         map[string]uint64 `json:"failed_by_reason"`
		Notices                                                map[string]uint64 `json:"notices"`
	} `json:"counters"`
	QueueDepth int `json:"queue_depth"`
	Secrets    []struct {
		Name        string `json:"name"`
		Set         bool   `json:"set"`
		Fingerprint string `json:"fingerprint"`
	} `json:"secrets"`
}

func (s *service) status() apiStatus {
	s.t.Helper()
	code, body := s.get("/api/status")
	if code != 200 {
		s.t.Fatalf("/api/status: %d %s", code, body)
	}
	var st apiStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		s.t.Fatalf("/api/status is not the documented JSON: %v\n%s", err, body)
	}
	return st
}

// waitFor polls /api/status until cond holds.
func (s *service) waitFor(what string, cond func(apiStatus) bool) apiStatus {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var st apiStatus
	for time.Now().Before(deadline) {
		if st = s.status(); cond(st) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("timed out waiting for %s; last status %+v\nlogs:\n%s", what, st, tail(s.stdout.String(), 30))
	return st
}

// stop ends run as SIGTERM would and checks that it returns nil within 10 s, and that the
// simulator never saw two connections at once.
func (s *service) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		s.t.Errorf("run did not return within 10 s of cancel")
	}
	if got := s.sim.Stats().MaxConnections; got > 1 {
		s.t.Errorf("the simulator saw %d connections at once, want at most 1", got)
	}
}

func (s *service) items() []map[string]types.AttributeValue {
	s.t.Helper()
	out, err := s.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(s.table)})
	if err != nil {
		s.t.Fatalf("scan: %v", err)
	}
	return out.Items
}

// finalCounters reads the counters from the log line run writes last ("stopped"), after the
// queue has drained and the page is down.
func finalCounters(t *testing.T, logs string) (c struct {
	Msg                                         string `json:"msg"`
	Received, Matched, Written, Failed, Skipped uint64
}) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		rec := c
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "stopped" {
			c = rec
		}
	}
	if c.Msg != "stopped" {
		t.Fatalf("no final 'stopped' log line:\n%s", tail(logs, 10))
	}
	return c
}

// assertNoLeak searches every output of the run for the secret values and their encoded forms.
func (s *service) assertNoLeak() {
	s.t.Helper()
	s.bodyMu.Lock()
	outputs := map[string]string{"stdout": s.stdout.String(), "stderr": s.stderr.String(), "http": strings.Join(s.bodies, "\n")}
	s.bodyMu.Unlock()
	assertNoSecret(s.t, outputs)
}

// secretValues are the values of testCreds.
func secretValues() []string {
	return []string{testCreds.ConsumerKey, testCreds.ConsumerSecret, testCreds.AccessToken, testCreds.AccessTokenSecret}
}

// secretForms are the values of testCreds and the encodings a leak could take.
func secretForms() []string { return leakcheck.Forms(secretValues()...) }

// assertNoSecret fails for every output (name -> text) that holds a secret in any form.
func assertNoSecret(t *testing.T, outputs map[string]string) {
	t.Helper()
	leakcheck.Assert(t, secretValues(), outputs)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
