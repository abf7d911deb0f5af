package stream

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"
)

// testCreds are distinctive values, so that a leak is easy to search for.
var testCreds = Credentials{
	ConsumerKey:       "ck-Zq7xLEAKCHECKconsumerkey",
	ConsumerSecret:    "cs-Wv3yLEAKCHECKconsumersecret",
	AccessToken:       "at-Pp9tLEAKCHECKaccesstoken",
	AccessTokenSecret: "as-Rr2sLEAKCHECKaccesssecret",
}

func credentialValues(c Credentials) []string {
	return []string{c.ConsumerKey, c.ConsumerSecret, c.AccessToken, c.AccessTokenSecret}
}

// streamServer is a v1.1 statuses/filter endpoint with scripted connections: the n-th request
// is answered by script[n], and the last entry answers every later request. It counts requests
// and the handlers running at once.
type streamServer struct {
	t      *testing.T
	srv    *httptest.Server
	script []http.HandlerFunc
	// verify, when set, rejects with 401 any request whose OAuth 1.0a signature does not
	// verify against these credentials.
	verify *Credentials

	conns liveCounter

	mu       sync.Mutex
	requests int
	lastForm url.Values
}

func newStreamServer(t *testing.T, script ...http.HandlerFunc) *streamServer {
	t.Helper()
	s := &streamServer{t: t, script: script}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// liveGrace is how long a new connection waits for the handlers of earlier ones to finish
// before it counts itself. A client that closed its connection before opening the next one can
// still find the old handler running for a moment, because the server learns of a close
// asynchronously (and a hijacked connection is closed before its handler returns). Only a
// client that really holds two connections keeps the old handler alive past the grace.
const liveGrace = 500 * time.Millisecond

// liveCounter counts the stream handlers running at once, and the most ever running, for the
// tests' one-connection-at-a-time checks.
type liveCounter struct {
	mu      sync.Mutex
	live    int
	maxLive int
}

// enter counts a new handler, after the grace described at liveGrace, and returns the function
// that counts it out.
func (c *liveCounter) enter() (leave func()) {
	deadline := time.Now().Add(liveGrace)
	c.mu.Lock()
	for c.live > 0 && time.Now().Before(deadline) {
		c.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		c.mu.Lock()
	}
	c.live++
	c.maxLive = max(c.maxLive, c.live)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.live--
		c.mu.Unlock()
	}
}

// most returns the most handlers that ever ran at once.
func (c *liveCounter) most() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxLive
}

func (s *streamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.conns.enter()()
	s.mu.Lock()
	n := s.requests
	s.requests++
	s.lastForm = r.URL.Query()
	s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/1.1/statuses/filter.json" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if s.verify != nil {
		if err := verifyOAuth1(r, *s.verify); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":32,"message":"Could not authenticate you."}]}`)
			return
		}
	}
	s.script[min(n, len(s.script)-1)](w, r)
}

func (s *streamServer) stats() (requests, maxLive int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.conns.most()
}

// sendLines answers 200, writes each line with its "\r\n" (a flush after each), and ends the
// response cleanly.
func sendLines(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for _, l := range lines {
			fmt.Fprint(w, l+"\r\n")
			w.(http.Flusher).Flush()
		}
	}
}

// sendRaw answers 200 and writes body as it is.
func sendRaw(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, body)
	}
}

// holdOpen answers 200, writes the lines, then sends a keep-alive every interval until the
// client goes away.
func holdOpen(interval time.Duration, lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sendLines(lines...)(w, r)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := fmt.Fprint(w, "\r\n"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}
}

// silent answers 200 with the lines, then sends nothing until the client goes away.
func silent(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sendLines(lines...)(w, r)
		<-r.Context().Done()
	}
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// hijack writes raw bytes on the TCP connection and closes it, to cut a response anywhere.
func hijack(raw string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		buf.WriteString(raw)
		buf.Flush()
		conn.Close()
	}
}

// fakeClock records every reconnect wait. With auto set, each wait ends at once; otherwise it
// ends when the test calls fire.
type fakeClock struct {
	auto bool

	mu      sync.Mutex
	waits   []time.Duration
	pending chan time.Time
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	if c.auto {
		ch <- time.Time{}
	} else {
		c.pending = ch
	}
	return ch
}

func (c *fakeClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending <- time.Time{}
	c.pending = nil
}

func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// recorder collects emitted records.
type recorder struct {
	mu   sync.Mutex
	recs []Record
	// block, when set, is waited on before each record is taken (a slow consumer).
	block func()
}

func (r *recorder) emit(_ context.Context, rec Record) {
	if r.block != nil {
		r.block()
	}
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

func (r *recorder) records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.recs...)
}

func (r *recorder) messages() []Message {
	var out []Message
	for _, rec := range r.records() {
		if rec.Kind == KindMessage {
			out = append(out, rec.Message)
		}
	}
	return out
}

// summary renders records as "msg:ID", "skip:reason", "notice:type", for comparisons.
func (r *recorder) summary() []string {
	var out []string
	for _, rec := range r.records() {
		out = append(out, recordSummary(rec))
	}
	return out
}

func recordSummary(rec Record) string {
	switch rec.Kind {
	case KindMessage:
		return "msg:" + rec.Message.ID
	case KindNotice:
		return "notice:" + rec.Notice
	case KindSkipped:
		return "skip:" + rec.Reason
	}
	return fmt.Sprintf("kind(%d)", rec.Kind)
}

// runSource starts src.Run and returns a stop function that cancels it and waits for Run to
// return, failing the test if it does not within a generous deadline.
func runSource(t *testing.T, src Source, emit func(context.Context, Record)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, emit) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newTestSource builds a source against url with test credentials, a fake clock and a JSON
// logger writing into logs.
func newTestSource(t *testing.T, baseURL string, clock *fakeClock, logs *syncbuf.Buffer, mutate ...func(*TwitterConfig)) *TwitterSource {
	t.Helper()
	cfg := TwitterConfig{
		BaseURL:     baseURL,
		Credentials: testCreds,
		Track:       []string{"golang", "twitter api"},
		After:       clock.After,
	}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, m := range mutate {
		m(&cfg)
	}
	src, err := NewTwitterSource(cfg)
	if err != nil {
		t.Fatalf("NewTwitterSource: %v", err)
	}
	return src
}

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// tweetLine is a minimal v1.1 tweet as one stream line.
func tweetLine(id, user, text string) string {
	return fmt.Sprintf(`{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":%s,"id_str":%q,"text":%q,`+
		`"user":{"id":1,"screen_name":%q},"entities":{"hashtags":[],"urls":[],"user_mentions":[]},`+
		`"retweet_count":0,"favorite_count":0,"lang":"en"}`, id, id, text, user)
}

// verifyOAuth1 checks an OAuth 1.0a HMAC-SHA1 signature (RFC 5849 section 3.4), written from
// the RFC so that it checks the client library rather than repeats it.
func verifyOAuth1(r *http.Request, c Credentials) error {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "OAuth ") {
		return fmt.Errorf("no OAuth authorization")
	}
	oauth := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(h, "OAuth "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("bad authorization parameter")
		}
		uv, err := url.QueryUnescape(strings.Trim(v, `"`))
		if err != nil {
			return err
		}
		ku, _ := url.QueryUnescape(k)
		oauth[ku] = uv
	}
	if oauth["oauth_consumer_key"] != c.ConsumerKey || oauth["oauth_token"] != c.AccessToken {
		return fmt.Errorf("unknown key or token")
	}
	if oauth["oauth_signature_method"] != "HMAC-SHA1" {
		return fmt.Errorf("signature method")
	}
	// Section 3.4.1.3.2: encode each name and value, sort by name then value, join.
	var params [][2]string
	for k, v := range oauth {
		if k != "oauth_signature" && k != "realm" {
			params = append(params, [2]string{rfc3986(k), rfc3986(v)})
		}
	}
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			params = append(params, [2]string{rfc3986(k), rfc3986(v)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i][0] != params[j][0] {
			return params[i][0] < params[j][0]
		}
		return params[i][1] < params[j][1]
	})
	joined := make([]string, len(params))
	for i, p := range params {
		joined[i] = p[0] + "=" + p[1]
	}
	base := r.Method + "&" + rfc3986("http://"+strings.ToLower(r.Host)+r.URL.Path) + "&" + rfc3986(strings.Join(joined, "&"))
	mac := hmac.New(sha1.New, []byte(rfc3986(c.ConsumerSecret)+"&"+rfc3986(c.AccessTokenSecret)))
	mac.Write([]byte(base))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(oauth["oauth_signature"])) {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}

func rfc3986(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
