package main

// Secrets and hostile input through the whole service: no secret value (or an encoding of
// one) in any log line, response or error, in any state the faults drive it into; and stream
// content that carries HTML renders as text.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/twittersim"
)

// everyPage fetches each kind of response the server gives: pages, JSON, health checks, the
// error answers (400, 404, 405) and odd paths.
func (s *service) everyPage() {
	s.t.Helper()
	for _, p := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/healthz"}, {"HEAD", "/healthz"}, {"GET", "/api/status"},
		{"GET", "/api/matches"}, {"GET", "/api/matches?limit=1"}, {"GET", "/api/matches?limit=abc"},
		{"GET", "/api/matches?limit=100000"}, {"GET", "/no-such-page"}, {"GET", "/api/no-such-thing"},
		{"GET", "/static/no-such.css"}, {"POST", "/"}, {"DELETE", "/api/status"}, {"GET", "/%2e%2e/%2e%2e/etc/passwd"},
		{"GET", "/" + strings.Repeat("x", 4000)}, {"GET", "/?q=%3Cscript%3E"},
	} {
		s.fetch(p.method, p.path)
	}
}

func TestService_NoSecretInAnyOutputUnderFaults(t *testing.T) {
	s := startService(t, testCreds, withDynamoProxy(), withEnv("STALL_TIMEOUT", "300ms"),
		withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive = 100, 100*time.Millisecond }))
	s.waitFor("tweets written and fingerprints computed", func(st apiStatus) bool {
		ok := st.Counters.Written > 0
		for _, sec := range st.Secrets {
			ok = ok && sec.Fingerprint != ""
		}
		return ok
	})
	s.everyPage()

	// Each state an operator may look at the page in.
	states := []struct {
		name  string
		cause func()
		until func(apiStatus) bool
	}{
		{"stream rejected (401)", func() { s.sim.FailNext(401, 1); s.sim.DisconnectAfter(0, false) },
			func(st apiStatus) bool { return st.Stream.State == "rejected" }},
		{"stream back after 401", s.sim.ClearFaults, func(st apiStatus) bool { return st.Stream.State == "connected" }},
		{"stream stalled", func() { s.sim.Stall(0) }, func(st apiStatus) bool { return strings.HasPrefix(st.Stream.LastError, "stalled") }},
		{"stream dropped mid-line", func() { s.sim.ClearFaults(); s.sim.DisconnectAfter(2, true) },
			func(st apiStatus) bool { return st.Counters.SkippedByReason["partial_line"] > 0 }},
		{"DynamoDB throttling", func() { s.sim.ClearFaults(); s.proxy.ThrottleNext(-1) },
			func(st apiStatus) bool { return strings.Contains(st.Health.Detail, "ProvisionedThroughputExceeded") }},
		{"DynamoDB unreachable", func() { s.proxy.Clear(); s.proxy.Down() },
			func(st apiStatus) bool { return strings.Contains(st.Health.Detail, "request send failed") }},
	}
	for _, st := range states {
		st.cause()
		s.waitFor(st.name, st.until)
		s.everyPage()
	}
	if err := s.proxy.Up(); err != nil {
		t.Fatal(err)
	}
	s.stop()
	s.assertNoLeak()
	if t.Failed() {
		return
	}
	// The checks above would pass vacuously if the outputs were empty.
	if n := len(s.bodies); n < 100 || !strings.Contains(s.stdout.String(), `"msg":"stopped"`) {
		t.Errorf("searched %d responses and %d bytes of logs; want every page in every state and the whole log", n, len(s.stdout.String()))
	}
}

func TestRun_ConfigErrorsNameVariablesNeverValues(t *testing.T) {
	base := map[string]string{
		"DYNAMODBTABLE": "twitterStream", "AWSREGION": "us-east-1", "FILTER": "golang",
		"CONSUMERKEY": testCreds.ConsumerKey, "CONSUMERSECRETKEY": testCreds.ConsumerSecret,
		"ACCESSTOKEN": testCreds.AccessToken, "ACCESSTOKENSECRET": testCreds.AccessTokenSecret,
		"HTTP_ADDR": "127.0.0.1:0", "AWS_ENDPOINT_URL": "http://" + freePort(t),
	}
	tests := []struct {
		name      string
		change    map[string]string
		wantNames []string
	}{
		{
			name: "every other setting broken",
			change: map[string]string{
				"DYNAMODBTABLE": "", "AWSREGION": "moon-base-1a", "FILTER": "ok," + strings.Repeat("x", 61),
				"QUEUE_SIZE": "lots", "STALL_TIMEOUT": "-1s", "LOG_LEVEL": "loud", "HTTP_ADDR": "nowhere",
				"SOURCE": "carrier-pigeon",
			},
			wantNames: []string{"DYNAMODBTABLE", "AWSREGION", "FILTER", "QUEUE_SIZE", "STALL_TIMEOUT", "LOG_LEVEL", "HTTP_ADDR", "SOURCE"},
		},
		{
			name:      "secrets set but blank",
			change:    map[string]string{"CONSUMERKEY": " ", "ACCESSTOKENSECRET": "\t"},
			wantNames: []string{"CONSUMERKEY", "ACCESSTOKENSECRET"},
		},
		{
			// An operator who pastes a credential into the stream URL's user info: the URL
			// is rejected without being quoted back.
			name:      "credential in the stream URL with a path",
			change:    map[string]string{"TWITTER_STREAM_URL": "https://app:" + testCreds.ConsumerSecret + "@stream.example.com/1.1"},
			wantNames: []string{"TWITTER_STREAM_URL"},
		},
		{
			name:      "credential with URL characters in the stream URL",
			change:    map[string]string{"TWITTER_STREAM_URL": "https://app:" + testCreds.AccessTokenSecret + "@stream.example.com"},
			wantNames: []string{"TWITTER_STREAM_URL"},
		},
		{
			name:      "credential in the stream URL",
			change:    map[string]string{"TWITTER_STREAM_URL": "https://app:" + testCreds.ConsumerKey + "@stream.example.com"},
			wantNames: []string{"TWITTER_STREAM_URL"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.change {
				env[k] = v
			}
			var stdout, stderr syncbuf.Buffer
			err := run(t.Context(), nil, envOf(env), strings.NewReader(""), &stdout, &stderr)
			if err == nil {
				t.Fatal("run accepted a broken configuration")
			}
			var out strings.Builder
			code := exitCode(err, &out)
			msg := out.String()
			if code != 2 {
				t.Errorf("exit status %d, want 2 for a configuration error; message:\n%s", code, msg)
			}
			for _, name := range tc.wantNames {
				if !strings.Contains(msg, name) {
					t.Errorf("the error does not name %s:\n%s", name, redact(msg))
				}
			}
			assertNoSecret(t, map[string]string{"error": msg, "stdout": stdout.String(), "stderr": stderr.String()})
		})
	}
}

// redact replaces every form of a test secret in text, so that a failing test can print it.
func redact(text string) string {
	for _, f := range secretForms() {
		text = strings.ReplaceAll(text, f, "[SECRET]")
	}
	return text
}

// checkInertHTML parses a page the way a browser tokenizes it and fails on anything stream
// content could have smuggled in: a script-capable element, an event handler attribute, or a
// javascript: URL in any attribute.
func checkInertHTML(t *testing.T, page string) {
	t.Helper()
	dangerous := map[string]bool{"script": true, "iframe": true, "object": true, "embed": true, "svg": true,
		"img": true, "style": true, "base": true, "form": true, "math": true}
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if dangerous[tok.Data] {
				t.Errorf("the page has a <%s> element", tok.Data)
			}
			for _, a := range tok.Attr {
				v := strings.ToLower(strings.Join(strings.Fields(a.Val), ""))
				if strings.HasPrefix(a.Key, "on") || strings.Contains(v, "javascript:") {
					t.Errorf("the page has <%s %s=%q>", tok.Data, a.Key, a.Val)
				}
				if tok.Data == "meta" && a.Key == "content" && strings.Contains(v, "url=") {
					t.Errorf("the page has a redirecting <meta content=%q>", a.Val)
				}
			}
		}
	}
}

func TestService_RendersHostileStreamContentInert(t *testing.T) {
	s := startService(t, testCreds, withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive = -1, 100*time.Millisecond }))
	s.waitFor("connected", func(st apiStatus) bool { return st.Stream.State == "connected" })
	hostile := []string{
		tweetLine(7001, "alice", "Alice", "<script>alert(1)</script> streammatch"),
		tweetLine(7002, `javascript:alert(2)//<svg/onload=alert(3)>`, `<img src=x onerror=alert(4)>`,
			`streammatch <a href="javascript:alert(5)">click</a> <iframe src="javascript:alert(6)"></iframe>`),
		tweetLine(7003, `"><style>@import'//evil.example'</style>`, "Mallory", `streammatch </pre></td><meta http-equiv="refresh" content="0;url=javascript:alert(7)">`),
	}
	for _, l := range hostile {
		s.send(l)
	}
	s.waitFor("the hostile tweets written", func(st apiStatus) bool { return st.Counters.Written == uint64(len(hostile)) })

	code, hdr, page := s.fetch(http.MethodGet, "/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	checkInertHTML(t, page)
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the page does not show the tweet text as escaped text")
	}

	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Type":            "text/html; charset=UTF-8",
	}
	check := func(what string, hdr http.Header, contentType string) {
		t.Helper()
		for name, v := range want {
			if name == "Content-Type" {
				v = contentType
			}
			if got := hdr.Get(name); !strings.EqualFold(got, v) {
				t.Errorf("%s: header %s: got %q, want %q", what, name, got, v)
			}
		}
		if got := hdr.Values("X-XSS-Protection"); len(got) != 0 {
			t.Errorf("%s: X-XSS-Protection %q is sent; OWASP advises against it", what, got)
		}
	}
	check("GET /", hdr, "text/html; charset=UTF-8")
	_, hdr, matches := s.fetch(http.MethodGet, "/api/matches")
	check("GET /api/matches", hdr, "application/json")
	if strings.Contains(matches, "<script>") || !strings.Contains(matches, `\u003cscript\u003e`) {
		t.Errorf("/api/matches does not escape markup as \\u003c...: %.300s", matches)
	}
	_, hdr, _ = s.fetch(http.MethodGet, "/no-such-page")
	check("GET /no-such-page", hdr, "text/html; charset=UTF-8")
	_, hdr, _ = s.fetch(http.MethodGet, "/api/status")
	check("GET /api/status", hdr, "application/json")
}
