package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/fingerprint"
	"github.com/streammatch/streammatch/internal/mototest"
	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/store"
)

// The end-to-end tests of the X and Mastodon sources: run() against a protocol peer for each
// (an X filtered stream with its rules endpoint, a Mastodon streaming server) and moto_server.

// sourceToken is a distinctive secret value, for the leak checks.
const sourceToken = "ST-leakcheck-5e1d77+/="

// sourceRun is one run() of the program with a non-Twitter source.
type sourceRun struct {
	t      *testing.T
	ddb    *dynamodb.Client
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	base   string
	cancel context.CancelFunc
	done   chan error
	pages  []string
}

// startSourceRun starts moto_server, creates the blog's table and runs the program with env
// added to a base configuration.
func startSourceRun(t *testing.T, env map[string]string) *sourceRun {
	t.Helper()
	// TestMain (harness_test.go) has set the AWS test keys for the whole package.
	moto := mototest.Start(t)
	ddb := dynamodb.NewFromConfig(moto.AWSConfig(t))
	_, err := store.EnsureTable(context.Background(), ddb, "twitterStream")
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	full := map[string]string{
		"DYNAMODBTABLE":    "twitterStream",
		"AWSREGION":        mototest.Region,
		"FILTER":           "fargate,secrets manager",
		"HTTP_ADDR":        "127.0.0.1:0",
		"AWS_ENDPOINT_URL": moto.URL,
		"LOG_LEVEL":        "debug",
	}
	for k, v := range env {
		full[k] = v
	}
	r := &sourceRun{t: t, ddb: ddb, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- run(ctx, nil, envOf(full), strings.NewReader(""), r.stdout, r.stderr) }()
	t.Cleanup(r.stop)
	r.base = "http://" + waitListening(t, r.stdout, r.done)
	return r
}

// sourceStatus is the part of /api/status these tests read.
type sourceStatus struct {
	Stream struct {
		Source    string `json:"source"`
		State     string `json:"state"`
		LastError string `json:"last_error"`
	} `json:"stream"`
	Counters struct {
		Matched, Written uint64
		SkippedByReason  map[string]uint64 `json:"skipped_by_reason"`
	} `json:"counters"`
	Secrets []struct {
		Name        string `json:"name"`
		Set         bool   `json:"set"`
		Fingerprint string `json:"fingerprint"`
	} `json:"secrets"`
}

func (r *sourceRun) status() sourceStatus {
	r.t.Helper()
	resp, err := http.Get(r.base + "/api/status")
	if err != nil {
		r.t.Fatalf("GET /api/status: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r.pages = append(r.pages, string(body))
	var st sourceStatus
	if err := json.Unmarshal(body, &st); err != nil {
		r.t.Fatalf("/api/status: %v\n%s", err, body)
	}
	return st
}

func (r *sourceRun) waitFor(what string, cond func(sourceStatus) bool) sourceStatus {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var st sourceStatus
	for time.Now().Before(deadline) {
		if st = r.status(); cond(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("timed out waiting for %s; last status %+v\nlogs:\n%s", what, st, r.stdout.String())
	return st
}

func (r *sourceRun) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Errorf("run did not return within 10 s of cancel")
	}
}

// items returns user -> text of every item in the table.
func (r *sourceRun) items() map[string]string {
	r.t.Helper()
	out, err := r.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("twitterStream")})
	if err != nil {
		r.t.Fatalf("scan: %v", err)
	}
	got := map[string]string{}
	for _, it := range out.Items {
		user, _ := it["user"].(*types.AttributeValueMemberS)
		text, _ := it["text"].(*types.AttributeValueMemberS)
		if user == nil || text == nil {
			r.t.Errorf("item without user or text: %v", it)
			continue
		}
		got[user.Value] = text.Value
	}
	return got
}

// checkSecretsAndLeaks checks the page lists exactly the source's secret, fingerprinted, and
// that the value appears in no output.
func (r *sourceRun) checkSecretsAndLeaks(name string) {
	r.t.Helper()
	st := r.waitFor("the fingerprint", func(st sourceStatus) bool { return len(st.Secrets) == 1 && st.Secrets[0].Fingerprint != "" })
	if st.Secrets[0].Name != name || !st.Secrets[0].Set || st.Secrets[0].Fingerprint != fingerprint.Of(name, "", sourceToken) {
		r.t.Errorf("secrets: got %+v, want only %s with its fingerprint", st.Secrets, name)
	}
	for where, text := range map[string]string{"stdout": r.stdout.String(), "stderr": r.stderr.String(), "pages": strings.Join(r.pages, "\n")} {
		if strings.Contains(text, sourceToken) {
			r.t.Errorf("%s contains the token", where)
		}
	}
}

// xPeer is an X API v2 filtered stream: the rules endpoint and the stream, both behind the
// bearer token. The stream sends matching and unmatched posts, a malformed line and
// heartbeats, then holds the connection open.
type xPeer struct {
	mu    sync.Mutex
	rules []map[string]string
	adds  int
}

func (p *xPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+sourceToken {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"title":"Unauthorized","status":401}`)
		return
	}
	switch {
	case r.URL.Path == "/2/tweets/search/stream/rules" && r.Method == http.MethodGet:
		p.mu.Lock()
		json.NewEncoder(w).Encode(map[string]any{"data": p.rules, "meta": map[string]any{"result_count": len(p.rules)}})
		p.mu.Unlock()
	case r.URL.Path == "/2/tweets/search/stream/rules" && r.Method == http.MethodPost:
		var body struct{ Add []map[string]string }
		json.NewDecoder(r.Body).Decode(&body)
		p.mu.Lock()
		for i, a := range body.Add {
			a["id"] = fmt.Sprint(100 + len(p.rules) + i)
			p.rules = append(p.rules, a)
			p.adds++
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"meta":{"summary":{"created":1}}}`)
	case r.URL.Path == "/2/tweets/search/stream" && r.Method == http.MethodGet:
		w.WriteHeader(http.StatusOK)
		post := func(id, user, text string) string {
			b, _ := json.Marshal(map[string]any{
				"data":     map[string]any{"id": id, "text": text, "author_id": "u" + id, "created_at": "2025-03-01T10:00:0" + id + ".000Z", "lang": "en"},
				"includes": map[string]any{"users": []map[string]string{{"id": "u" + id, "username": user}}},
			})
			return string(b) + "\r\n"
		}
		fmt.Fprint(w, "\r\n"+post("1", "alice", "Running on Fargate &amp; loving it")+post("2", "bob", "nothing to see")+
			"{broken\r\n"+post("3", "carol", "Secrets Manager rotation, caf\u00e9"))
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
				fmt.Fprint(w, "\r\n")
				w.(http.Flusher).Flush()
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func TestService_XSourceWritesMatchesToDynamoDB(t *testing.T) {
	peer := &xPeer{}
	ts := httptest.NewServer(peer)
	t.Cleanup(ts.Close)
	r := startSourceRun(t, map[string]string{"SOURCE": "x", "X_STREAM_URL": ts.URL, "X_BEARER_TOKEN": sourceToken})

	st := r.waitFor("2 written", func(st sourceStatus) bool { return st.Counters.Written >= 2 })
	if st.Stream.Source != "x" || st.Stream.State != "connected" {
		t.Errorf("stream: got %+v, want x connected", st.Stream)
	}
	if st.Counters.SkippedByReason["invalid_json"] != 1 {
		t.Errorf("skipped: got %v, want one invalid_json", st.Counters.SkippedByReason)
	}
	r.checkSecretsAndLeaks("X_BEARER_TOKEN")
	r.stop()

	want := map[string]string{"alice": "Running on Fargate & loving it", "carol": "Secrets Manager rotation, café"}
	if got := r.items(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("items: got %v, want %v", got, want)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	var tags []string
	for _, rule := range peer.rules {
		tags = append(tags, rule["tag"][:len("streammatch:")])
	}
	if peer.adds != 2 || !slices.Equal(tags, []string{"streammatch:", "streammatch:"}) {
		t.Errorf("rules: got %v, want one tagged rule per FILTER phrase", peer.rules)
	}
}

func TestService_XSourceWithWrongTokenIsRejected(t *testing.T) {
	ts := httptest.NewServer(&xPeer{})
	t.Cleanup(ts.Close)
	r := startSourceRun(t, map[string]string{"SOURCE": "x", "X_STREAM_URL": ts.URL, "X_BEARER_TOKEN": "wrong-" + sourceToken})
	st := r.waitFor("rejected", func(st sourceStatus) bool { return st.Stream.State == "rejected" })
	if !strings.Contains(st.Stream.LastError, "credentials rejected (401)") {
		t.Errorf("last error: got %q, want credentials rejected (401)", st.Stream.LastError)
	}
	r.stop()
	if n := len(r.items()); n != 0 {
		t.Errorf("items: got %d, want none", n)
	}
}

// mastodonPeer is a Mastodon streaming server's federated timeline behind the bearer token.
func mastodonPeer(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/streaming/public" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+sourceToken {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"Missing access token"}`)
		return
	}
	status := func(id, acct, content string) string {
		b, _ := json.Marshal(map[string]any{"id": id, "created_at": "2025-03-01T10:00:0" + id + ".000Z", "content": content,
			"language": "en", "account": map[string]string{"acct": acct}, "tags": []any{}, "mentions": []any{}})
		return "event: update\ndata: " + string(b) + "\n\n"
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ":)\n"+
		status("1", "alice@remote.example", `<p>Deploying on <a class="mention hashtag" href="https://m/tags/fargate">#<span>Fargate</span></a><br>today &lt;3</p>`)+
		":thump\n"+
		status("2", "bob", "<p>nothing here</p>")+
		"event: delete\ndata: 77\n\n"+
		"event: update\ndata: {oops\n\n"+
		status("3", "carol", `<p>secrets manager<script>alert(1)</script> rocks</p>`))
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
			fmt.Fprint(w, ":thump\n")
			w.(http.Flusher).Flush()
		}
	}
}

func TestService_MastodonSourceWritesMatchesToDynamoDB(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(mastodonPeer))
	t.Cleanup(ts.Close)
	r := startSourceRun(t, map[string]string{"SOURCE": "mastodon", "MASTODON_URL": ts.URL, "MASTODON_ACCESS_TOKEN": sourceToken})

	st := r.waitFor("2 written", func(st sourceStatus) bool { return st.Counters.Written >= 2 })
	if st.Stream.Source != "mastodon" || st.Stream.State != "connected" {
		t.Errorf("stream: got %+v, want mastodon connected", st.Stream)
	}
	if st.Counters.SkippedByReason["invalid_json"] != 1 || st.Counters.SkippedByReason["notice_delete"] != 1 {
		t.Errorf("skipped: got %v, want one invalid_json and one notice_delete", st.Counters.SkippedByReason)
	}
	r.checkSecretsAndLeaks("MASTODON_ACCESS_TOKEN")
	r.stop()

	want := map[string]string{"alice@remote.example": "Deploying on #Fargate\ntoday <3", "carol": "secrets manager rocks"}
	if got := r.items(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("items: got %q, want %q", got, want)
	}
}

func TestService_MastodonSourceWithWrongTokenIsRejected(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(mastodonPeer))
	t.Cleanup(ts.Close)
	r := startSourceRun(t, map[string]string{"SOURCE": "mastodon", "MASTODON_URL": ts.URL, "MASTODON_ACCESS_TOKEN": "nope"})
	st := r.waitFor("rejected", func(st sourceStatus) bool { return st.Stream.State == "rejected" })
	if st.Stream.LastError != "credentials rejected (401)" {
		t.Errorf("last error: got %q, want credentials rejected (401)", st.Stream.LastError)
	}
}
