// Package streamtest holds what the sources' tests share: a scripted streaming server that
// counts connections, response scripts (lines, keep-alives, silence, cut connections), a fake
// reconnect clock, a recorder of emitted records, and leak checks.
package streamtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/stream"
)

// Server is a streaming endpoint with scripted connections: the n-th stream request is
// answered by script[n], and the last entry answers every later request. Requests that Check
// refuses get a 401 with RejectBody; requests to other paths go to API (after the same check).
// It counts stream requests, refusals, and the stream handlers running at once.
type Server struct {
	URL string
	// Check, when set, refuses with 401 any request it returns an error for. Set it before
	// the first request.
	Check func(*http.Request) error
	// RejectBody is the body of a 401.
	RejectBody string
	// API answers requests to paths other than the stream's.
	API http.Handler

	srv          *httptest.Server
	method, path string
	script       []http.HandlerFunc
	conns        liveCounter

	mu           sync.Mutex
	requests     int
	unauthorized int
	lastQuery    string
}

// NewServer starts a Server for method and path, closed when the test ends.
func NewServer(t *testing.T, method, path string, script ...http.HandlerFunc) *Server {
	t.Helper()
	s := &Server{method: method, path: path, script: script}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Close stops the server before the test ends (a goroutine-leak check needs it gone).
func (s *Server) Close() { s.srv.Close() }

// Bearer returns a Check that accepts only "Authorization: Bearer token".
func Bearer(token string) func(*http.Request) error {
	return func(r *http.Request) error {
		if r.Header.Get("Authorization") != "Bearer "+token {
			return fmt.Errorf("wrong bearer token")
		}
		return nil
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.Check != nil && s.Check(r) != nil {
		s.mu.Lock()
		s.unauthorized++
		s.mu.Unlock()
		Status(http.StatusUnauthorized, s.RejectBody)(w, r)
		return
	}
	if r.URL.Path != s.path {
		if s.API == nil {
			http.NotFound(w, r)
			return
		}
		s.API.ServeHTTP(w, r)
		return
	}
	if r.Method != s.method {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	defer s.conns.enter()()
	s.mu.Lock()
	n := s.requests
	s.requests++
	s.lastQuery = r.URL.RawQuery
	s.mu.Unlock()
	s.script[min(n, len(s.script)-1)](w, r)
}

// Stats returns the stream requests answered by the script, the most stream handlers that ever
// ran at once, and the requests refused with 401.
func (s *Server) Stats() (requests, maxLive, unauthorized int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.conns.most(), s.unauthorized
}

// LastQuery is the query of the last stream request.
func (s *Server) LastQuery() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, _ := url.ParseQuery(s.lastQuery)
	return q
}

// LastRawQuery is the raw query of the last stream request.
func (s *Server) LastRawQuery() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastQuery
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

func (c *liveCounter) most() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxLive
}

// SendLines answers 200, writes each line with its "\r\n" (a flush after each), and ends the
// response cleanly.
func SendLines(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for _, l := range lines {
			fmt.Fprint(w, l+"\r\n")
			w.(http.Flusher).Flush()
		}
	}
}

// SendRaw answers 200 and writes body as it is.
func SendRaw(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, body)
	}
}

// HoldOpen answers 200, writes the lines, then sends a keep-alive every interval until the
// client goes away.
func HoldOpen(interval time.Duration, lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		SendLines(lines...)(w, r)
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

// Silent answers 200 with the lines, then sends nothing until the client goes away.
func Silent(lines ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		SendLines(lines...)(w, r)
		<-r.Context().Done()
	}
}

// Status answers code with body.
func Status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// Hijack writes raw bytes on the TCP connection and closes it, to cut a response anywhere.
func Hijack(raw string) http.HandlerFunc {
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

// Clock records every reconnect wait. With Auto set, each wait ends at once (the first
// HoldAfter waits only, when HoldAfter > 0); otherwise it ends when the test calls Fire.
type Clock struct {
	Auto      bool
	HoldAfter int

	mu      sync.Mutex
	waits   []time.Duration
	pending chan time.Time
}

// After is the sources' After.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	auto := c.Auto && (c.HoldAfter == 0 || len(c.waits) < c.HoldAfter)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	if auto {
		ch <- time.Time{}
	} else {
		c.pending = ch
	}
	return ch
}

// Fire ends the pending wait.
func (c *Clock) Fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending <- time.Time{}
	c.pending = nil
}

// Recorded returns every wait asked for so far.
func (c *Clock) Recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// Recorder collects emitted records.
type Recorder struct {
	// Block, when set, is waited on before each record is taken (a slow consumer).
	Block func()

	mu   sync.Mutex
	recs []stream.Record
}

// Emit is the sources' emit.
func (r *Recorder) Emit(_ context.Context, rec stream.Record) {
	if r.Block != nil {
		r.Block()
	}
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

// Records returns what was emitted so far.
func (r *Recorder) Records() []stream.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stream.Record(nil), r.recs...)
}

// Messages returns the messages emitted so far.
func (r *Recorder) Messages() []stream.Message {
	var out []stream.Message
	for _, rec := range r.Records() {
		if rec.Kind == stream.KindMessage {
			out = append(out, rec.Message)
		}
	}
	return out
}

// Summary renders records as "msg:ID", "skip:reason", "notice:type", for comparisons.
func (r *Recorder) Summary() []string {
	var out []string
	for _, rec := range r.Records() {
		out = append(out, RecordSummary(rec))
	}
	return out
}

// RecordSummary renders one record as Summary does.
func RecordSummary(rec stream.Record) string {
	switch rec.Kind {
	case stream.KindMessage:
		return "msg:" + rec.Message.ID
	case stream.KindNotice:
		return "notice:" + rec.Notice
	case stream.KindSkipped:
		return "skip:" + rec.Reason
	}
	return fmt.Sprintf("kind(%d)", rec.Kind)
}

// RunSource starts src.Run and returns a stop function that cancels it and waits for Run to
// return, failing the test if it does not within a generous deadline.
func RunSource(t *testing.T, src stream.Source, emit func(context.Context, stream.Record)) (stop func()) {
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

// Eventually polls cond until it holds or a generous deadline passes.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ClosedPort returns an address on which nothing listens.
func ClosedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// SlogJSON is a debug-level JSON logger writing into w.
func SlogJSON(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestToken is a distinctive bearer token, so that a leak is easy to search for.
const TestToken = stream.Secret("bt-Kq4LEAKCHECKbearertoken+/=")

// The documented reconnect schedules the tests expect: exponential from 5 s for HTTP errors,
// linear in steps of 250 ms for network errors.
const (
	HTTPInitial = 5 * time.Second
	NetworkStep = 250 * time.Millisecond
)

// NewBearerServer is a stream at path (GET) that accepts only TestToken; api answers the other
// paths.
func NewBearerServer(t *testing.T, path string, api http.Handler, script ...http.HandlerFunc) *Server {
	t.Helper()
	s := NewServer(t, http.MethodGet, path, script...)
	s.Check = Bearer(string(TestToken))
	s.RejectBody = `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`
	s.API = api
	return s
}

// AssertNoToken fails if any output holds TestToken.
func AssertNoToken(t *testing.T, outputs ...string) {
	t.Helper()
	AssertNoSecret(t, []string{string(TestToken)}, outputs...)
}

// AssertNoSecret fails if any output holds one of the secret values.
func AssertNoSecret(t *testing.T, secrets []string, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output contains a secret value (%d bytes) in:\n%s", len(s), strings.ReplaceAll(out, s, "<SECRET>"))
			}
		}
	}
}

// Connections is a RoundTripper that counts the requests in flight, from the start of the
// request until its response body is closed, and the most ever in flight: the client side of
// the one-connection-at-a-time checks.
type Connections struct {
	Next http.RoundTripper

	mu      sync.Mutex
	live    int
	maxLive int
}

// RoundTrip counts the request and passes it on.
func (c *Connections) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.live++
	c.maxLive = max(c.maxLive, c.live)
	c.mu.Unlock()
	done := sync.OnceFunc(func() {
		c.mu.Lock()
		c.live--
		c.mu.Unlock()
	})
	resp, err := c.Next.RoundTrip(r)
	if err != nil {
		done()
		return nil, err
	}
	resp.Body = &countedBody{ReadCloser: resp.Body, done: done}
	return resp, nil
}

// Counts returns the requests in flight now and the most ever in flight at once.
func (c *Connections) Counts() (live, maxLive int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live, c.maxLive
}

type countedBody struct {
	io.ReadCloser
	done func()
}

func (b *countedBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}
