package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"
)

// testToken is a distinctive bearer token, so that a leak is easy to search for.
const testToken = Token("bt-Kq4LEAKCHECKbearertoken+/=")

// bearerServer is a streaming endpoint that checks "Authorization: Bearer" and answers its
// n-th stream request with script[n] (the last entry answers every later one). Other paths go
// to api, after the same check. It counts stream requests, 401s, and stream handlers running at
// once.
type bearerServer struct {
	t      *testing.T
	srv    *httptest.Server
	token  string
	path   string
	script []http.HandlerFunc
	api    http.Handler

	conns liveCounter

	mu           sync.Mutex
	requests     int
	unauthorized int
	lastQuery    string
}

func newBearerServer(t *testing.T, path string, api http.Handler, script ...http.HandlerFunc) *bearerServer {
	t.Helper()
	s := &bearerServer{t: t, token: string(testToken), path: path, script: script, api: api}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *bearerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		s.mu.Lock()
		s.unauthorized++
		s.mu.Unlock()
		status(http.StatusUnauthorized, `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`)(w, r)
		return
	}
	if r.URL.Path != s.path {
		if s.api == nil {
			http.NotFound(w, r)
			return
		}
		s.api.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet {
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

func (s *bearerServer) stats() (requests, maxLive, unauthorized int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.conns.most(), s.unauthorized
}

// assertNoToken fails if any output holds the test token.
func assertNoToken(t *testing.T, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		if strings.Contains(out, string(testToken)) {
			t.Errorf("output contains the bearer token:\n%s", out)
		}
	}
}

func TestToken_IsRedactedEverywhere(t *testing.T) {
	type holder struct{ T Token }
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "token", testToken, "holder", holder{testToken})
	js, err := json.Marshal(holder{testToken})
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		fmt.Sprint(testToken), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", testToken, testToken, testToken, testToken, testToken, testToken, testToken, testToken),
		fmt.Sprintf("%v %+v %#v", holder{testToken}, holder{testToken}, holder{testToken}),
		logs.String(), string(js), fmt.Errorf("wrapped: %v", testToken).Error(),
	}
	assertNoToken(t, outputs...)
	if !strings.Contains(outputs[0], "REDACTED") {
		t.Errorf("fmt.Sprint: got %q, want the redacted form", outputs[0])
	}
}

func TestRateLimitWait_ReadsXAndMastodonHeaders(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"X epoch seconds", map[string]string{"x-rate-limit-reset": fmt.Sprint(now.Add(7 * time.Minute).Unix())}, 7 * time.Minute},
		{"Mastodon ISO 8601", map[string]string{"X-RateLimit-Reset": now.Add(90 * time.Second).Format(time.RFC3339)}, 90 * time.Second},
		{"Retry-After seconds", map[string]string{"Retry-After": "120"}, 2 * time.Minute},
		{"the latest wins", map[string]string{"Retry-After": "30", "x-rate-limit-reset": fmt.Sprint(now.Add(time.Minute).Unix())}, time.Minute},
		{"in the past", map[string]string{"x-rate-limit-reset": fmt.Sprint(now.Add(-time.Minute).Unix())}, 0},
		{"capped", map[string]string{"x-rate-limit-reset": fmt.Sprint(now.Add(48 * time.Hour).Unix())}, maxRateLimitWait},
		{"garbage", map[string]string{"x-rate-limit-reset": "soon", "Retry-After": "-3"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := rateLimitWait(h, now); got != tt.want {
				t.Errorf("rateLimitWait: got %v, want %v", got, tt.want)
			}
		})
	}
}

func slogJSON(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
