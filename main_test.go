package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/secrets"
	"github.com/streammatch/streammatch/twittersim"
)

// syncBuffer is an io.Writer that several goroutines may write to (the logger, the server).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// distinctive secret values: the leak checks search every output for them.
var testCreds = twittersim.Credentials{
	ConsumerKey:       "CK-leakcheck-7f3a9c",
	ConsumerSecret:    "CS-leakcheck-b41e08+/=",
	AccessToken:       "AT-leakcheck-2d6f51",
	AccessTokenSecret: "ATS-leakcheck-c98e17&?",
}

// service is one run() of the whole program against moto_server and the stream simulator.
type service struct {
	t       *testing.T
	ddb     *dynamodb.Client
	table   string
	sim     *twittersim.Server
	stdout  *syncBuffer
	stderr  *syncBuffer
	base    string // http://127.0.0.1:PORT
	cancel  context.CancelFunc
	done    chan error
	bodies  []string // every HTTP response seen, headers and body, for the leak check
	bodyMu  sync.Mutex
	stopped bool
}

// startService starts moto_server, creates the blog's table, starts the simulator with
// testCreds, and runs the program with the given credentials.
func startService(t *testing.T, creds twittersim.Credentials, extraEnv ...string) *service {
	t.Helper()
	moto := mototest.Start(t)
	// The AWS SDK's default chain reads credentials from the process environment, as on a
	// laptop; on Fargate they come from the container credentials endpoint instead.
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")

	ddb := dynamodb.NewFromConfig(moto.AWSConfig(t))
	table := "twitterStream"
	ctx := context.Background()
	_, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
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
		t.Fatalf("create table: %v", err)
	}

	sim, err := twittersim.New(twittersim.Config{Credentials: testCreds, Rate: 40, KeepAlive: 200 * time.Millisecond, Seed: 7, NoticeEvery: 10})
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); ts.Close() })

	env := map[string]string{
		"DYNAMODBTABLE":      table,
		"AWSREGION":          mototest.Region,
		"FILTER":             "fargate,secrets manager,streammatch",
		"CONSUMERKEY":        creds.ConsumerKey,
		"CONSUMERSECRETKEY":  creds.ConsumerSecret,
		"ACCESSTOKEN":        creds.AccessToken,
		"ACCESSTOKENSECRET":  creds.AccessTokenSecret,
		"TWITTER_STREAM_URL": ts.URL,
		"HTTP_ADDR":          "127.0.0.1:0",
		"AWS_ENDPOINT_URL":   moto.URL,
		"LOG_LEVEL":          "debug",
	}
	for i := 0; i+1 < len(extraEnv); i += 2 {
		env[extraEnv[i]] = extraEnv[i+1]
	}
	s := &service{t: t, ddb: ddb, table: table, sim: sim, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- run(runCtx, nil, envOf(env), strings.NewReader(""), s.stdout, s.stderr) }()
	t.Cleanup(s.stop)
	s.base = "http://" + s.waitListening()
	return s
}

// waitListening reads the JSON logs until the server says where it listens.
func (s *service) waitListening() string {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(s.stdout.String(), "\n") {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http server listening" && rec.Addr != "" {
				return rec.Addr
			}
		}
		select {
		case err := <-s.done:
			s.t.Fatalf("run returned before listening: %v\nstderr:\n%s", err, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.t.Fatalf("server did not log its address; stdout:\n%s", s.stdout.String())
	return ""
}

// get fetches a path and records the whole response for the leak check.
func (s *service) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.base + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var hdr strings.Builder
	_ = resp.Header.Write(&hdr)
	s.bodyMu.Lock()
	s.bodies = append(s.bodies, path+"\n"+hdr.String()+"\n"+string(body))
	s.bodyMu.Unlock()
	return resp.StatusCode, string(body)
}

type apiStatus struct {
	Health struct{ Status, Detail string } `json:"health"`
	Stream struct {
		State     string `json:"state"`
		LastError string `json:"last_error"`
	} `json:"stream"`
	Counters struct {
		Received, Matched, Unmatched, Written, Failed, Skipped uint64
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
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("timed out waiting for %s; last status %+v\nlogs:\n%s", what, st, tail(s.stdout.String(), 30))
	return st
}

// stop ends run as SIGTERM would and checks that it returns nil promptly.
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
}

func (s *service) items() []map[string]types.AttributeValue {
	s.t.Helper()
	out, err := s.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(s.table)})
	if err != nil {
		s.t.Fatalf("scan: %v", err)
	}
	return out.Items
}

// assertNoLeak searches every output of the run for the secret values and their encoded forms.
func (s *service) assertNoLeak() {
	s.t.Helper()
	s.bodyMu.Lock()
	outputs := map[string]string{"stdout": s.stdout.String(), "stderr": s.stderr.String(), "http": strings.Join(s.bodies, "\n")}
	s.bodyMu.Unlock()
	for _, v := range []string{testCreds.ConsumerKey, testCreds.ConsumerSecret, testCreds.AccessToken, testCreds.AccessTokenSecret} {
		forms := []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v)), url.QueryEscape(v), url.PathEscape(v)}
		for where, text := range outputs {
			for _, f := range forms {
				if strings.Contains(text, f) {
					s.t.Errorf("%s contains a secret value (form %q)", where, f)
				}
			}
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var dateKey = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ#\d+$`)

func TestService_WritesMatchesFromSignedStreamToDynamoDB(t *testing.T) {
	s := startService(t, testCreds)

	if code, body := s.get("/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: got %d %s, want 200 ok", code, body)
	}
	st := s.waitFor("20 written items and fingerprints", func(st apiStatus) bool {
		done := st.Counters.Written >= 20
		for _, sec := range st.Secrets {
			done = done && sec.Fingerprint != ""
		}
		return done
	})
	if st.Stream.State != "connected" {
		t.Errorf("stream state: got %q, want connected", st.Stream.State)
	}
	want := map[string]string{
		"CONSUMERKEY": testCreds.ConsumerKey, "CONSUMERSECRETKEY": testCreds.ConsumerSecret,
		"ACCESSTOKEN": testCreds.AccessToken, "ACCESSTOKENSECRET": testCreds.AccessTokenSecret,
	}
	if len(st.Secrets) != 4 {
		t.Errorf("secrets: got %d entries, want 4", len(st.Secrets))
	}
	for _, sec := range st.Secrets {
		if got, w := sec.Fingerprint, secrets.Fingerprint(sec.Name, want[sec.Name]); got != w || !sec.Set {
			t.Errorf("fingerprint of %s: got %q (set %v), want %q", sec.Name, got, sec.Set, w)
		}
	}
	for _, path := range []string{"/", "/api/matches?limit=5", "/no-such-page", "/api/matches?limit=abc"} {
		s.get(path)
	}

	s.stop()
	items := s.items()
	if len(items) < 20 {
		t.Fatalf("items in DynamoDB: got %d, want at least 20", len(items))
	}
	nonASCII := 0
	for _, it := range items {
		user, _ := it["user"].(*types.AttributeValueMemberS)
		date, _ := it["date"].(*types.AttributeValueMemberS)
		text, _ := it["text"].(*types.AttributeValueMemberS)
		matched, _ := it["matched"].(*types.AttributeValueMemberSS)
		if user == nil || user.Value == "" || date == nil || !dateKey.MatchString(date.Value) {
			t.Errorf("item key: got user=%v date=%v, want a screen name and RFC3339#id", it["user"], it["date"])
			continue
		}
		if text == nil || !utf8.ValidString(text.Value) || matched == nil || len(matched.Value) == 0 {
			t.Errorf("item %s/%s: text or matched missing: %v", user.Value, date.Value, it)
			continue
		}
		if strings.IndexFunc(text.Value, func(r rune) bool { return r > 127 }) >= 0 {
			nonASCII++
		}
	}
	if nonASCII == 0 {
		t.Errorf("no stored text has a non-ASCII character; the simulator sends some, and the blog's bug was dropping them")
	}
	s.assertNoLeak()
}

func TestService_CountersAddUpAfterShutdown(t *testing.T) {
	s := startService(t, testCreds)
	s.waitFor("some matches", func(st apiStatus) bool { return st.Counters.Matched >= 10 })
	// Keep the HTTP server for one last look: stop reading and draining happen first, and run
	// returns only after the page is down, so read the counters from the log's final line.
	s.stop()
	var last struct {
		Msg                                         string `json:"msg"`
		Received, Matched, Written, Failed, Skipped uint64
	}
	for _, line := range strings.Split(s.stdout.String(), "\n") {
		var rec = last
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "stopped" {
			last = rec
		}
	}
	if last.Msg != "stopped" {
		t.Fatalf("no final 'stopped' log line:\n%s", tail(s.stdout.String(), 10))
	}
	if last.Matched != last.Written+last.Failed {
		t.Errorf("after shutdown: matched %d != written %d + failed %d (the queue must be empty)", last.Matched, last.Written, last.Failed)
	}
	if got := uint64(len(s.items())); got != last.Written {
		t.Errorf("items in table: got %d, want written=%d (keys are unique per message)", got, last.Written)
	}
	if last.Received < last.Matched+last.Skipped {
		t.Errorf("received %d < matched %d + skipped %d", last.Received, last.Matched, last.Skipped)
	}
}

func TestService_WrongCredentialsAreRejectedAndNothingIsWritten(t *testing.T) {
	wrong := testCreds
	wrong.ConsumerSecret = "CS-wrong-value-0000"
	s := startService(t, wrong)
	st := s.waitFor("the stream to be rejected", func(st apiStatus) bool { return st.Stream.State == "rejected" })
	if !strings.Contains(st.Stream.LastError, "401") {
		t.Errorf("last_error: got %q, want it to name the 401", st.Stream.LastError)
	}
	if st.Health.Status != "degraded" {
		t.Errorf("health: got %q, want degraded (not dead: a restart would not fix credentials)", st.Health.Status)
	}
	if code, body := s.get("/healthz"); code != 200 {
		t.Errorf("/healthz: got %d %s, want 200 while degraded", code, body)
	}
	s.get("/")
	if st.Counters.Written != 0 || len(s.items()) != 0 {
		t.Errorf("written: got %d counted, %d in table; want nothing", st.Counters.Written, len(s.items()))
	}
	if got := s.sim.Stats(); got.Unauthorized == 0 {
		t.Errorf("simulator answered 401 to %d requests, want at least 1", got.Unauthorized)
	}
	s.stop()
	s.assertNoLeak()
	if strings.Contains(s.stdout.String()+s.stderr.String(), wrong.ConsumerSecret) {
		t.Errorf("output contains the wrong secret value")
	}
}
