package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/templates"
)

// do sends one request through the server's handler.
func do(t *testing.T, s *Server, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

// routeCases covers every route plus the error paths, so header tests see every kind of response.
var routeCases = []struct {
	name, method, target string
	wantCode             int
}{
	{"status page", http.MethodGet, "/", http.StatusOK},
	{"stylesheet", http.MethodGet, "/static/style.css", http.StatusOK},
	{"healthz", http.MethodGet, "/healthz", http.StatusOK},
	{"healthz head", http.MethodHead, "/healthz", http.StatusOK},
	{"api status", http.MethodGet, "/api/status", http.StatusOK},
	{"api matches", http.MethodGet, "/api/matches", http.StatusOK},
	{"api matches bad limit", http.MethodGet, "/api/matches?limit=abc", http.StatusBadRequest},
	{"html 404", http.MethodGet, "/no/such/page", http.StatusNotFound},
	{"api 404", http.MethodGet, "/api/nope", http.StatusNotFound},
	{"template source not served", http.MethodGet, "/static/status.html", http.StatusNotFound},
	{"method not allowed", http.MethodPost, "/", http.StatusMethodNotAllowed},
}

func TestServer_SecurityHeaders(t *testing.T) {
	s, _ := newTestServer(t, sampleStatus())
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for _, tc := range routeCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, s, tc.method, tc.target)
			if rec.Code != tc.wantCode {
				t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, rec.Code, tc.wantCode)
			}
			for name, value := range want {
				if got := rec.Header().Values(name); len(got) != 1 || got[0] != value {
					t.Errorf("%s %s: header %s = %q, want exactly [%q]", tc.method, tc.target, name, got, value)
				}
			}
		})
	}
}

func TestServer_NoXSSProtectionHeader(t *testing.T) {
	s, _ := newTestServer(t, sampleStatus())
	for _, tc := range routeCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, s, tc.method, tc.target)
			if got, ok := rec.Header()["X-Xss-Protection"]; ok {
				t.Errorf("%s %s: X-XSS-Protection = %q, want no such header", tc.method, tc.target, got)
			}
		})
	}
}

func TestServer_ContentTypes(t *testing.T) {
	s, _ := newTestServer(t, sampleStatus())
	tests := []struct {
		target, want string
	}{
		{"/", "text/html; charset=UTF-8"},
		{"/static/style.css", "text/css; charset=utf-8"},
		{"/healthz", "application/json"},
		{"/api/status", "application/json"},
		{"/api/matches", "application/json"},
		{"/api/nope", "application/json"},
		{"/nope", "text/html; charset=UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			if got := do(t, s, http.MethodGet, tt.target).Header().Get("Content-Type"); got != tt.want {
				t.Errorf("GET %s: Content-Type %q, want %q", tt.target, got, tt.want)
			}
		})
	}
}

// xssStatus carries script payloads in every field that comes from the stream or the config. The
// payloads would mark <body> if they ran, which the Chromium test looks for.
func xssStatus() *fakeStatus {
	f := sampleStatus()
	f.report.Health = Health{Status: HealthDegraded, Detail: `<b onmouseover=alert(1)>detail</b>`}
	f.report.Stream.LastError = `<script>alert("lasterror")</script>`
	f.report.Track = append(f.report.Track, `<i>term</i>`)
	f.matches = append([]MatchView{
		{ID: "1", User: "<img src=x onerror=document.body.setAttribute('data-pwned','img')>", CreatedAt: time.Now(),
			Text:  "<script>document.body.setAttribute('data-pwned','script')</script>",
			Terms: []string{"<svg onload=alert(1)>"}},
		{ID: "2", User: "javascript:alert(1)", Text: "<script>alert(1)</script>", Source: `"><script>alert(2)</script>`},
		{ID: "javascript:alert(3)", User: "gopher", Text: "id is not a number"},
	}, f.matches...)
	return f
}

func TestServer_EscapesStreamContent(t *testing.T) {
	s, _ := newTestServer(t, xssStatus())
	rec := do(t, s, http.MethodGet, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: status %d, want 200", rec.Code)
	}
	page := rec.Body.String()
	raw := []string{
		"<script>alert(1)</script>",
		"<img src=x onerror=",
		`<script>alert("lasterror")</script>`,
		`<b onmouseover=alert(1)>`,
		"<i>term</i>",
		"<svg onload=alert(1)>",
		`"><script>alert(2)</script>`,
		"<script>document.body",
	}
	for _, r := range raw {
		if strings.Contains(page, r) {
			t.Errorf("page contains %q unescaped", r)
		}
	}
	escaped := []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"&lt;img src=x onerror=",
	}
	for _, e := range escaped {
		if !strings.Contains(page, e) {
			t.Errorf("page lacks the escaped text %q", e)
		}
	}
	if m := regexp.MustCompile(`(?i)href="[^"]*javascript`).FindString(page); m != "" {
		t.Errorf("page has a javascript link: %q", m)
	}
	// The only <script at all would be an injected one.
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Errorf("page contains a <script element")
	}
	// A well-formed tweet still gets its link.
	if !strings.Contains(page, `href="https://twitter.com/gopherconf/status/1234567890123456789"`) {
		t.Errorf("page lacks the link to a well-formed tweet")
	}

	api := do(t, s, http.MethodGet, "/api/matches").Body.String()
	if strings.Contains(api, "<script") || strings.Contains(api, "<img") {
		t.Errorf("/api/matches has unescaped markup: %s", api)
	}
}

func TestTweetURL(t *testing.T) {
	tests := []struct {
		name string
		m    MatchView
		want string
	}{
		{"well formed", MatchView{User: "gopher_1", ID: "42"}, "https://twitter.com/gopher_1/status/42"},
		{"javascript user", MatchView{User: "javascript:alert(1)", ID: "42"}, ""},
		{"markup user", MatchView{User: "<img>", ID: "42"}, ""},
		{"long user", MatchView{User: "a_name_too_long_x", ID: "42"}, ""},
		{"non-numeric id", MatchView{User: "gopher", ID: "42/../x"}, ""},
		{"empty", MatchView{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tweetURL(tt.m); got != tt.want {
				t.Errorf("tweetURL(%+v) = %q, want %q", tt.m, got, tt.want)
			}
		})
	}
}

func TestHTTPURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://example.com/a", "https://example.com/a"},
		{"http://example.com", "http://example.com"},
		{"HTTPS://example.com", "HTTPS://example.com"},
		{"javascript:alert(1)", ""},
		{"JaVaScRiPt:alert(1)", ""},
		{"data:text/html,hi", ""},
		{"//example.com/x", ""},
		{"/relative", ""},
		{"https:///nohost", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := httpURL(tt.in); got != tt.want {
				t.Errorf("httpURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestServer_HealthzDegradedIs200(t *testing.T) {
	tests := []struct {
		name   string
		health Health
	}{
		{"ok", Health{Status: HealthOK}},
		{"degraded", Health{Status: HealthDegraded, Detail: "stream credentials rejected (401)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sampleStatus()
			f.report.Health = tt.health
			s, _ := newTestServer(t, f)
			rec := do(t, s, http.MethodGet, "/healthz")
			if rec.Code != http.StatusOK {
				t.Errorf("GET /healthz: status %d, want 200", rec.Code)
			}
			var got Health
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %q: %v", rec.Body.String(), err)
			}
			if got != tt.health {
				t.Errorf("GET /healthz body = %+v, want %+v", got, tt.health)
			}
			if rec := do(t, s, http.MethodHead, "/healthz"); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
				t.Errorf("HEAD /healthz: status %d body %q, want 200 and no body", rec.Code, rec.Body.String())
			}
		})
	}
}

func TestServer_UnhealthyIs503(t *testing.T) {
	tests := []struct {
		name       string
		health     Health
		wantStatus HealthStatus
	}{
		{"unhealthy", Health{Status: HealthUnhealthy, Detail: "store writer stopped"}, HealthUnhealthy},
		{"nothing reported", Health{}, HealthUnhealthy},
		{"unknown status", Health{Status: "confused"}, "confused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sampleStatus()
			f.report.Health = tt.health
			s, _ := newTestServer(t, f)
			rec := do(t, s, http.MethodGet, "/healthz")
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("GET /healthz: status %d, want 503", rec.Code)
			}
			var got Health
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %q: %v", rec.Body.String(), err)
			}
			if got.Status != tt.wantStatus {
				t.Errorf("GET /healthz status field = %q, want %q", got.Status, tt.wantStatus)
			}
			if rec := do(t, s, http.MethodHead, "/healthz"); rec.Code != http.StatusServiceUnavailable {
				t.Errorf("HEAD /healthz: status %d, want 503", rec.Code)
			}
		})
	}
}

func TestServer_MatchesLimit(t *testing.T) {
	tests := []struct {
		name      string
		query     string
		wantCode  int
		wantLimit int // the limit passed to RecentMatches; 0 when it must not be called
	}{
		{"default", "", http.StatusOK, 20},
		{"empty value", "?limit=", http.StatusOK, 20},
		{"one", "?limit=1", http.StatusOK, 1},
		{"max", "?limit=100", http.StatusOK, 100},
		{"over max", "?limit=101", http.StatusBadRequest, 0},
		{"zero", "?limit=0", http.StatusBadRequest, 0},
		{"negative", "?limit=-1", http.StatusBadRequest, 0},
		{"not a number", "?limit=abc", http.StatusBadRequest, 0},
		{"markup", "?limit=%3Cscript%3E", http.StatusBadRequest, 0},
		{"huge", "?limit=99999999999999999999", http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sampleStatus()
			for i := 0; i < 150; i++ {
				f.matches = append(f.matches, MatchView{ID: "x", User: "u", Text: "t"})
			}
			s, _ := newTestServer(t, f)
			rec := do(t, s, http.MethodGet, "/api/matches"+tt.query)
			if rec.Code != tt.wantCode {
				t.Fatalf("GET /api/matches%s: status %d, want %d (body %s)", tt.query, rec.Code, tt.wantCode, rec.Body)
			}
			if got := f.lastLimit(); got != tt.wantLimit {
				t.Errorf("RecentMatches limit = %d, want %d", got, tt.wantLimit)
			}
			if tt.wantCode == http.StatusOK {
				var got []MatchView
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if len(got) != tt.wantLimit {
					t.Errorf("got %d matches, want %d", len(got), tt.wantLimit)
				}
				if got[0].ID != f.matches[0].ID {
					t.Errorf("first match %q, want the newest %q", got[0].ID, f.matches[0].ID)
				}
				return
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("decode error body %q: %v", rec.Body.String(), err)
			}
			msg := body["error"]
			if !strings.Contains(msg, "limit") || !strings.Contains(msg, "1 to 100") {
				t.Errorf("error %q, want it to name the parameter limit and the range 1 to 100", msg)
			}
			if strings.Contains(msg, "script") || strings.Contains(msg, "abc") {
				t.Errorf("error %q echoes the request's value", msg)
			}
		})
	}
}

func TestServer_MatchesEmptyIsArray(t *testing.T) {
	s, _ := newTestServer(t, &fakeStatus{report: Report{Health: Health{Status: HealthOK}}})
	if got := strings.TrimSpace(do(t, s, http.MethodGet, "/api/matches").Body.String()); got != "[]" {
		t.Errorf("GET /api/matches with no matches = %s, want []", got)
	}
}

func TestServer_StatusJSONShape(t *testing.T) {
	tests := []struct {
		name   string
		status *fakeStatus
	}{
		{"busy", sampleStatus()},
		{"empty", &fakeStatus{}},
	}
	required := []string{
		"version", "uptime_seconds", "queue_depth", "track", "table", "region",
		"health.status", "health.detail",
		"stream.source", "stream.state", "stream.last_error",
		"counters.received", "counters.matched", "counters.unmatched", "counters.written",
		"counters.failed", "counters.skipped", "counters.skipped_by_reason",
		"counters.failed_by_reason", "counters.notices", "counters.limit_missed",
		"fingerprint_format",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, tt.status)
			rec := do(t, s, http.MethodGet, "/api/status")
			if rec.Code != http.StatusOK {
				t.Fatalf("GET /api/status: status %d, want 200", rec.Code)
			}
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("decode %s: %v", rec.Body, err)
			}
			for _, path := range required {
				if _, ok := lookup(doc, path); !ok {
					t.Errorf("/api/status lacks %s in %s", path, rec.Body)
				}
			}
			secrets, ok := doc["secrets"].([]any)
			if !ok {
				t.Fatalf("secrets = %#v, want a JSON array", doc["secrets"])
			}
			for i, s := range secrets {
				obj, _ := s.(map[string]any)
				for _, key := range []string{"name", "set", "fingerprint", "source", "state", "detail"} {
					if _, ok := obj[key]; !ok {
						t.Errorf("secrets[%d] lacks %q: %v", i, key, s)
					}
				}
			}
			if _, ok := doc["track"].([]any); !ok {
				t.Errorf("track = %#v, want a JSON array", doc["track"])
			}
		})
	}
}

// lookup finds a dotted path in a decoded JSON object.
func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, key := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestServer_StatusPageShowsReport(t *testing.T) {
	s, _ := newTestServer(t, sampleStatus())
	page := do(t, s, http.MethodGet, "/").Body.String()
	for _, want := range []string{
		"CONSUMERKEY", "fp3:c5f2cc364dab864b", "computing…", "missing",
		"connected", "1,048,576", "twitterStream", "eu-west-1", "3d 4h 5m",
		"gophercon", "@aws_news", "Touché", "streammatch fingerprint -source SOURCE NAME",
		// The audit: the source beside the fingerprint, the state and the rotation message.
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::",
		"/streammatch/ACCESSTOKEN", "not given", "current", "unknown", "drift is not checked for SSM parameters",
		`rotated at <time datetime="2026-03-14T09:16:53Z">2026-03-14 09:16:53 UTC</time>; this task started at <time datetime="2026-03-14T07:26:53Z">2026-03-14 07:26:53 UTC</time>; restart to pick it up`,
		"Format <code>fp3</code>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
}

func TestServer_StatusJSONHasTheSecretAudit(t *testing.T) {
	s, _ := newTestServer(t, sampleStatus())
	var doc struct {
		Secrets []map[string]any `json:"secrets"`
	}
	if err := json.Unmarshal(do(t, s, http.MethodGet, "/api/status").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Secrets) != 4 {
		t.Fatalf("secrets: got %d, want 4", len(doc.Secrets))
	}
	rotated, ssm := doc.Secrets[0], doc.Secrets[2]
	want := map[string]any{
		"source":          "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::",
		"state":           "rotated",
		"rotated_at":      "2026-03-14T09:16:53Z",
		"task_started_at": "2026-03-14T07:26:53Z",
		"checked_at":      "2026-03-14T09:25:53Z",
	}
	for k, v := range want {
		if rotated[k] != v {
			t.Errorf("secrets[0].%s = %v, want %v", k, rotated[k], v)
		}
	}
	// The times are left out when there are none, not sent as year 1.
	for _, k := range []string{"rotated_at", "task_started_at", "checked_at"} {
		if _, ok := ssm[k]; ok {
			t.Errorf("secrets[2] (never checked) has %s = %v, want it absent", k, ssm[k])
		}
	}
	if ssm["state"] != "unknown" || ssm["source"] != "/streammatch/ACCESSTOKEN" {
		t.Errorf("secrets[2]: got %v, want unknown from /streammatch/ACCESSTOKEN", ssm)
	}
}

func TestServer_ErrorResponses(t *testing.T) {
	s, _ := newTestServer(t, sampleStatus())
	rec := do(t, s, http.MethodGet, "/no/<script>alert(1)</script>")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "Not Found") {
		t.Errorf("HTML 404: status %d body %q, want 404 and a page saying Not Found", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "<script>alert") || strings.Contains(rec.Body.String(), "alert(1)") {
		t.Errorf("HTML 404 echoes the request path: %s", rec.Body)
	}
	rec = do(t, s, http.MethodGet, "/api/nope")
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != http.StatusNotFound || got != `{"error":"Not Found"}` {
		t.Errorf("API 404: status %d body %s, want 404 {\"error\":\"Not Found\"}", rec.Code, got)
	}
}

func TestServer_PanicBecomes500(t *testing.T) {
	f := sampleStatus()
	f.panics = true
	s, logs := newTestServer(t, f)
	tests := []struct{ target, wantType string }{
		{"/", "text/html; charset=UTF-8"},
		{"/api/status", "application/json"},
	}
	for _, tt := range tests {
		rec := do(t, s, http.MethodGet, tt.target)
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("GET %s with a panicking Status: status %d, want 500", tt.target, rec.Code)
		}
		if got := rec.Header().Get("Content-Type"); got != tt.wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.target, got, tt.wantType)
		}
		if strings.Contains(rec.Body.String(), "exploded") {
			t.Errorf("GET %s: response leaks the panic: %s", tt.target, rec.Body)
		}
	}
	if !strings.Contains(logs.String(), "fake status exploded") {
		t.Errorf("panic not logged; logs:\n%s", logs)
	}
}

func TestServer_LogsRequests(t *testing.T) {
	s, logs := newTestServer(t, sampleStatus())
	do(t, s, http.MethodGet, "/api/matches?limit=5")
	do(t, s, http.MethodGet, "/healthz")
	out := logs.String()
	want := regexp.MustCompile(`level=INFO msg="http request" method=GET path=/api/matches status=200 duration=`)
	if !want.MatchString(out) {
		t.Errorf("logs lack a line matching %s; logs:\n%s", want, out)
	}
	wantHealth := regexp.MustCompile(`level=DEBUG msg="http request" method=GET path=/healthz status=200`)
	if !wantHealth.MatchString(out) {
		t.Errorf("logs lack a debug line matching %s; logs:\n%s", wantHealth, out)
	}
	if strings.Contains(out, "limit=5") {
		t.Errorf("logs contain the query string; logs:\n%s", out)
	}
}

// realTemplates copies the embedded templates into a MapFS that a test can then break.
func realTemplates(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(templates.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(templates.FS, path)
		m[path] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestServer_BrokenTemplateFailsAtStart(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(fstest.MapFS)
		wantErr string // "" means NewServer must succeed
	}{
		{"intact", func(fstest.MapFS) {}, ""},
		{"syntax error", func(m fstest.MapFS) {
			m["status.html"] = &fstest.MapFile{Data: []byte(`<p>{{.Report.Version</p>`)}
		}, "parse templates"},
		{"unknown function", func(m fstest.MapFS) {
			m["status.html"] = &fstest.MapFile{Data: []byte(`<p>{{shout .Title}}</p>`)}
		}, "parse templates"},
		{"escaping error", func(m fstest.MapFS) {
			// An unterminated attribute is only found by html/template's escaper, which runs on
			// the first Execute.
			m["error.html"] = &fstest.MapFile{Data: []byte(`<a href="{{.Message}}`)}
		}, "check template error.html"},
		{"missing field", func(m fstest.MapFS) {
			m["status.html"] = &fstest.MapFile{Data: []byte(`<p>{{.Report.NoSuchField}}</p>`)}
		}, "check template status.html"},
		{"missing page", func(m fstest.MapFS) { delete(m, "error.html") }, "error.html is missing"},
		{"missing stylesheet", func(m fstest.MapFS) { delete(m, "style.css") }, "read stylesheet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := realTemplates(t)
			tt.break_(fsys)
			_, err := newServer(Config{Addr: "127.0.0.1:0"}, sampleStatus(), fsys)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("newServer: %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("newServer error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestServer_ShutsDownOnContextCancel(t *testing.T) {
	defer goleak.VerifyNone(t)

	s, _ := newTestServer(t, sampleStatus())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	addr := s.Addr()
	if addr == nil {
		t.Fatalf("Addr() = nil, want the bound address; Run: %v", <-done)
	}
	transport := &http.Transport{}
	client := &http.Client{Transport: transport}
	resp, err := client.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: status %d, want 200", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of cancel")
	}
	transport.CloseIdleConnections()
	if _, err := net.Dial("tcp", addr.String()); err == nil {
		t.Errorf("still accepting connections on %s after Run returned", addr)
	}
}

func TestServer_RunFailsOnBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := NewServer(Config{Addr: ln.Addr().String()}, sampleStatus())
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("Run on a busy address = %v, want a *net.OpError", err)
	}
	if got := s.Addr(); got != nil {
		t.Errorf("Addr() after a failed listen = %v, want nil", got)
	}
}

func TestStateClass(t *testing.T) {
	tests := []struct {
		state stream.State
		want  string
	}{
		{stream.StateConnected, "good"},
		{stream.StateBackoff, "warn"},
		{stream.StateRejected, "bad"},
		{stream.StateStopped, "muted"},
		{`" onload="x`, "muted"},
	}
	for _, tt := range tests {
		if got := stateClass(tt.state); got != tt.want {
			t.Errorf("stateClass(%q) = %q, want %q", tt.state, got, tt.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{uint64(0), "0"}, {uint64(999), "999"}, {uint64(1000), "1,000"}, {uint64(1048576), "1,048,576"},
		{int64(-1234567), "-1,234,567"}, {17, "17"}, {123456, "123,456"},
	}
	for _, tt := range tests {
		if got := formatCount(tt.in); got != tt.want {
			t.Errorf("formatCount(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatUptime(t *testing.T) {
	tests := []struct {
		seconds float64
		want    string
	}{
		{0, "0s"}, {-5, "0s"}, {59.9, "59s"}, {61, "1m 1s"}, {3600, "1h 0m"}, {90061, "1d 1h 1m"},
	}
	for _, tt := range tests {
		if got := formatUptime(tt.seconds); got != tt.want {
			t.Errorf("formatUptime(%v) = %q, want %q", tt.seconds, got, tt.want)
		}
	}
}
