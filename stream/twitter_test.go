package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streammatch/streammatch/internal/syncbuf"
)

func TestTwitterSource_DeliversTweetsFromSignedConnection(t *testing.T) {
	srv := newStreamServer(t, holdOpen(20*time.Millisecond,
		tweetLine("1", "alice", "hello golang"),
		"", // a keep-alive
		tweetLine("2", "bob", "the twitter api &amp; me"),
		`{"limit":{"track":7}}`,
	))
	srv.verify = &testCreds
	var logs syncbuf.Buffer
	src := newTestSource(t, srv.srv.URL, &fakeClock{auto: true}, &logs)
	var rec recorder
	stop := runSource(t, src, rec.emit)

	eventually(t, "three records", func() bool { return len(rec.records()) >= 3 })
	if got, want := rec.summary(), []string{"msg:1", "msg:2", "notice:limit"}; !slices.Equal(got, want) {
		t.Errorf("records = %v, want %v", got, want)
	}
	recs := rec.records()
	if got := recs[2].LimitMissed; got != 7 {
		t.Errorf("LimitMissed = %d, want 7", got)
	}
	m := recs[1].Message
	want := Message{ID: "2", User: "bob", Text: "the twitter api & me", Lang: "en", Source: "twitter",
		CreatedAt: time.Date(2018, 10, 10, 20, 19, 24, 0, time.UTC)}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("message = %+v, want %+v", m, want)
	}
	st := src.Status()
	if st.State != StateConnected || st.Connects != 1 || st.Source != "twitter" {
		t.Errorf("status = %+v, want connected with 1 connect", st)
	}
	requests, _ := srv.stats()
	if requests != 1 {
		t.Errorf("requests = %d, want 1", requests)
	}
	srv.mu.Lock()
	form := srv.lastForm
	srv.mu.Unlock()
	if got := form.Get("track"); got != "golang,twitter api" {
		t.Errorf("track = %q, want %q", got, "golang,twitter api")
	}

	stop()
	if got := src.Status().State; got != StateStopped {
		t.Errorf("state after stop = %s, want stopped", got)
	}
	assertNoCredentials(t, logs.String(), testCreds)
}

func TestTwitterSource_SurfacesRejectedCredentials(t *testing.T) {
	srv := newStreamServer(t, sendLines(tweetLine("1", "alice", "never sent")))
	srv.verify = &testCreds
	wrong := testCreds
	wrong.AccessTokenSecret = "as-Kk4wWRONGaccesssecret"
	clock := &fakeClock{}
	var logs syncbuf.Buffer
	src := newTestSource(t, srv.srv.URL, clock, &logs, func(c *TwitterConfig) { c.Credentials = wrong })
	var rec recorder
	stop := runSource(t, src, rec.emit)

	// Each wait blocks until fired, so the request count shows there is no hot loop: exactly
	// one request per wait, and the waits follow the HTTP error schedule.
	schedule := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 160 * time.Second, 320 * time.Second, 320 * time.Second}
	for i, want := range schedule {
		eventually(t, fmt.Sprintf("wait %d", i+1), func() bool { return len(clock.recorded()) == i+1 })
		if got := clock.recorded()[i]; got != want {
			t.Fatalf("wait %d = %v, want %v", i+1, got, want)
		}
		st := src.Status()
		if st.State != StateRejected || st.LastError != "credentials rejected (401)" || st.RetryIn != want {
			t.Fatalf("status = %+v, want rejected, %q, retry in %v", st, "credentials rejected (401)", want)
		}
		if requests, _ := srv.stats(); requests != i+1 {
			t.Fatalf("requests = %d after %d waits, want %d", requests, i+1, i+1)
		}
		clock.fire()
	}
	stop()
	if got := rec.records(); len(got) != 0 {
		t.Errorf("records = %v, want none", got)
	}
	out := logs.String()
	if !strings.Contains(out, "credentials rejected (401)") || !strings.Contains(out, `"twitter_code":32`) {
		t.Errorf("logs do not name the rejection and Twitter's code:\n%s", out)
	}
	assertNoCredentials(t, out, testCreds)
	assertNoCredentials(t, out, wrong)
}

func TestTwitterSource_BackoffSchedules(t *testing.T) {
	s := time.Second
	exp := func(from time.Duration, n int, limit time.Duration) []time.Duration {
		var out []time.Duration
		for d := from; len(out) < n; d = min(2*d, limit) {
			out = append(out, d)
		}
		return out
	}
	var linear []time.Duration
	for i := 1; i <= 66; i++ {
		linear = append(linear, min(time.Duration(i)*250*time.Millisecond, 16*s))
	}
	tweet := tweetLine("1", "alice", "hello")
	tests := []struct {
		name      string
		script    []http.HandlerFunc
		closed    bool // connect to a port nobody listens on
		want      []time.Duration
		wantState State
		wantError string // prefix of LastError
	}{
		{name: "503 exponential from 5s", script: []http.HandlerFunc{status(503, "")},
			want: exp(5*s, 8, 320*s), wantState: StateBackoff, wantError: "service unavailable (503)"},
		{name: "500 exponential from 5s", script: []http.HandlerFunc{status(500, "")},
			want: exp(5*s, 8, 320*s), wantState: StateBackoff, wantError: "http error (500)"},
		{name: "404 exponential from 5s", script: []http.HandlerFunc{status(404, "")},
			want: exp(5*s, 8, 320*s), wantState: StateBackoff, wantError: "http error (404)"},
		{name: "410 exponential from 5s", script: []http.HandlerFunc{status(410, "")},
			want: exp(5*s, 8, 320*s), wantState: StateBackoff, wantError: "http error (410)"},
		{name: "403 rejected, exponential from 5s", script: []http.HandlerFunc{status(403, `{"errors":[{"code":261}]}`)},
			want: exp(5*s, 4, 320*s), wantState: StateRejected, wantError: "forbidden (403)"},
		{name: "420 exponential from 60s", script: []http.HandlerFunc{status(420, "")},
			want: exp(60*s, 6, 16*time.Minute), wantState: StateBackoff, wantError: "rate limited (420)"},
		{name: "429 exponential from 60s", script: []http.HandlerFunc{status(429, "")},
			want: exp(60*s, 6, 16*time.Minute), wantState: StateBackoff, wantError: "rate limited (429)"},
		{name: "network error linear 250ms steps to 16s", closed: true,
			want: linear, wantState: StateBackoff, wantError: "network error: "},
		{name: "established then dropped reconnects at once", script: []http.HandlerFunc{sendLines(tweet)},
			want: []time.Duration{0, 0, 0, 0}, wantState: StateBackoff, wantError: "connection closed by server"},
		{name: "closed before any data backs off linearly", script: []http.HandlerFunc{sendLines()},
			want:      []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond},
			wantState: StateBackoff, wantError: "connection closed before any data"},
		{name: "a connection resets the HTTP schedule",
			script:    []http.HandlerFunc{status(503, ""), status(503, ""), sendLines(tweet), status(503, "")},
			want:      []time.Duration{5 * s, 10 * s, 0, 5 * s, 10 * s},
			wantState: StateBackoff, wantError: "service unavailable (503)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := "http://" + closedPort(t)
			if !tc.closed {
				base = newStreamServer(t, tc.script...).srv.URL
			}
			// The clock lets every wait but the last end at once; the last one holds, so the
			// status can be read in a stable state.
			clock := &fakeClock{auto: true}
			limit := len(tc.want)
			after := func(d time.Duration) <-chan time.Time {
				clock.mu.Lock()
				clock.auto = len(clock.waits) < limit-1
				clock.mu.Unlock()
				return clock.After(d)
			}
			src := newTestSource(t, base, clock, nil, func(c *TwitterConfig) { c.After = after })
			runSource(t, src, (&recorder{}).emit)

			eventually(t, "the schedule", func() bool { return len(clock.recorded()) == limit })
			if got := clock.recorded(); !slices.Equal(got, tc.want) {
				t.Errorf("waits = %v\nwant    %v", got, tc.want)
			}
			st := src.Status()
			if st.State != tc.wantState || !strings.HasPrefix(st.LastError, tc.wantError) || st.RetryIn != tc.want[limit-1] {
				t.Errorf("status = %+v, want state %s, last error %q..., retry in %v", st, tc.wantState, tc.wantError, tc.want[limit-1])
			}
		})
	}
}

func TestTwitterSource_ReconnectsAfter503(t *testing.T) {
	srv := newStreamServer(t, status(503, ""), holdOpen(20*time.Millisecond, tweetLine("1", "alice", "back")))
	clock := &fakeClock{auto: true}
	src := newTestSource(t, srv.srv.URL, clock, nil)
	var rec recorder
	runSource(t, src, rec.emit)

	eventually(t, "the tweet after the 503", func() bool { return len(rec.messages()) == 1 })
	if got, want := clock.recorded(), []time.Duration{5 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	st := src.Status()
	if st.State != StateConnected || st.LastError != "service unavailable (503)" || st.Connects != 1 {
		t.Errorf("status = %+v, want connected after a 503", st)
	}
}

func TestTwitterSource_DetectsStall(t *testing.T) {
	t.Run("silence after data is a stall", func(t *testing.T) {
		srv := newStreamServer(t,
			silent(tweetLine("1", "alice", "then silence")),
			holdOpen(20*time.Millisecond, tweetLine("2", "bob", "after the stall")))
		clock := &fakeClock{auto: true}
		var logs syncbuf.Buffer
		src := newTestSource(t, srv.srv.URL, clock, &logs, func(c *TwitterConfig) { c.StallTimeout = 200 * time.Millisecond })
		var rec recorder
		runSource(t, src, rec.emit)

		eventually(t, "the tweet after the stall", func() bool { return len(rec.messages()) == 2 })
		if got, want := clock.recorded(), []time.Duration{250 * time.Millisecond}; !slices.Equal(got, want) {
			t.Errorf("waits = %v, want %v (the network schedule after a stall)", got, want)
		}
		if got, want := src.Status().LastError, "stalled: no data for 200ms"; got != want {
			t.Errorf("last error = %q, want %q", got, want)
		}
		if !strings.Contains(logs.String(), `"state":"stalled"`) {
			t.Errorf("no stalled state in the logs:\n%s", logs.String())
		}
		if _, maxLive := src.observer.connections(); maxLive != 1 {
			t.Errorf("connections at once = %d, want 1", maxLive)
		}
	})
	t.Run("silence before the headers is a stall", func(t *testing.T) {
		srv := newStreamServer(t,
			func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			holdOpen(20*time.Millisecond, tweetLine("2", "bob", "after the stall")))
		clock := &fakeClock{auto: true}
		src := newTestSource(t, srv.srv.URL, clock, nil, func(c *TwitterConfig) { c.StallTimeout = 200 * time.Millisecond })
		var rec recorder
		runSource(t, src, rec.emit)

		eventually(t, "the tweet after the stall", func() bool { return len(rec.messages()) == 1 })
		if got, want := clock.recorded(), []time.Duration{250 * time.Millisecond}; !slices.Equal(got, want) {
			t.Errorf("waits = %v, want %v (a network-class failure)", got, want)
		}
		if got, want := src.Status().LastError, "stalled: no response for 200ms"; got != want {
			t.Errorf("last error = %q, want %q", got, want)
		}
	})
	t.Run("keep-alives are not a stall", func(t *testing.T) {
		srv := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
			sendLines(tweetLine("1", "alice", "first"))(w, r)
			for range 30 { // 1.5 s of keep-alives, every 50 ms
				time.Sleep(50 * time.Millisecond)
				fmt.Fprint(w, "\r\n")
				w.(http.Flusher).Flush()
			}
			fmt.Fprint(w, tweetLine("2", "bob", "second")+"\r\n")
		})
		clock := &fakeClock{} // the first wait holds: one connection only
		src := newTestSource(t, srv.srv.URL, clock, nil, func(c *TwitterConfig) { c.StallTimeout = time.Second })
		var rec recorder
		runSource(t, src, rec.emit)

		eventually(t, "the end of the connection", func() bool { return len(clock.recorded()) == 1 })
		if got, want := rec.summary(), []string{"msg:1", "msg:2"}; !slices.Equal(got, want) {
			t.Errorf("records = %v, want %v", got, want)
		}
		if got, want := src.Status().LastError, "connection closed by server"; got != want {
			t.Errorf("last error = %q, want %q", got, want)
		}
	})
	t.Run("a slow consumer is not a stall", func(t *testing.T) {
		srv := newStreamServer(t, holdOpen(30*time.Millisecond,
			tweetLine("1", "a", "one"), tweetLine("2", "b", "two"), tweetLine("3", "c", "three")))
		src := newTestSource(t, srv.srv.URL, &fakeClock{auto: true}, nil, func(c *TwitterConfig) { c.StallTimeout = 300 * time.Millisecond })
		first := true
		rec := recorder{block: func() {
			// The worker blocks on a full store queue for longer than the stall timeout. The
			// source is not reading then, so the silence is ours, not the server's.
			if first {
				first = false
				time.Sleep(time.Second)
			}
		}}
		runSource(t, src, rec.emit)

		eventually(t, "three tweets", func() bool { return len(rec.messages()) == 3 })
		if requests, _ := srv.stats(); requests != 1 {
			t.Errorf("requests = %d, want 1 (no stall while the consumer was busy)", requests)
		}
		if st := src.Status(); st.LastError != "" {
			t.Errorf("last error = %q, want none", st.LastError)
		}
	})
}

func TestTwitterSource_OneConnectionAtATime(t *testing.T) {
	t1, t2, t3 := tweetLine("1", "a", "one"), tweetLine("2", "b", "two"), tweetLine("3", "c", "three")
	srv := newStreamServer(t,
		sendLines(t1),
		status(503, ""),
		hijack("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk(t2+"\r\n")+"400\r\n"+t3[:20]),
		sendLines(),
		status(429, ""),
		status(401, ""),
		holdOpen(20*time.Millisecond, t3),
	)
	src := newTestSource(t, srv.srv.URL, &fakeClock{auto: true}, nil)
	var rec recorder
	runSource(t, src, rec.emit)

	eventually(t, "the third tweet", func() bool { return len(rec.messages()) == 3 })
	requests, serverMax := srv.stats()
	if requests != 7 {
		t.Errorf("requests = %d, want 7: one per attempt, and go-twitter's own retries never reach the server", requests)
	}
	if serverMax != 1 {
		t.Errorf("server saw %d connections at once, want 1", serverMax)
	}
	if _, clientMax := src.observer.connections(); clientMax != 1 {
		t.Errorf("client held %d connections at once, want 1", clientMax)
	}
}

func TestTwitterSource_DropMidMessage(t *testing.T) {
	t1, t2, t3, t4 := tweetLine("1", "a", "one"), tweetLine("2", "b", "two"), tweetLine("3", "c", "three"), tweetLine("4", "d", "after")
	tests := []struct {
		name      string
		first     http.HandlerFunc
		want      []string
		wantWaits []time.Duration
		wantError string
	}{
		{name: "clean close mid-message", first: sendRaw(t1 + "\r\n" + t2 + "\r\n" + t3[:len(t3)/2]),
			want: []string{"msg:1", "msg:2", "skip:partial_line", "msg:4"}, wantWaits: []time.Duration{0},
			wantError: "connection closed by server"},
		{name: "reset mid-stream", first: hijack("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunk(t1+"\r\n"+t2+"\r\n") + chunk(t3[:30]) + "400\r\n" + t3[30:40]),
			want: []string{"msg:1", "msg:2", "skip:partial_line", "msg:4"}, wantWaits: []time.Duration{0},
			wantError: "connection lost: unexpected EOF"},
		{name: "before the headers", first: hijack(""),
			want: []string{"msg:4"}, wantWaits: []time.Duration{250 * time.Millisecond},
			wantError: "network error: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStreamServer(t, tc.first, holdOpen(20*time.Millisecond, t4))
			clock := &fakeClock{auto: true}
			src := newTestSource(t, srv.srv.URL, clock, nil)
			var rec recorder
			runSource(t, src, rec.emit)

			eventually(t, "the tweet after the drop", func() bool {
				return slices.Contains(rec.summary(), "msg:4")
			})
			if got := rec.summary(); !slices.Equal(got, tc.want) {
				t.Errorf("records = %v, want %v", got, tc.want)
			}
			if got := clock.recorded(); !slices.Equal(got, tc.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tc.wantWaits)
			}
			if got := src.Status().LastError; !strings.HasPrefix(got, tc.wantError) {
				t.Errorf("last error = %q, want %q...", got, tc.wantError)
			}
		})
	}
}

func TestTwitterSource_SkipsMalformedLines(t *testing.T) {
	const created = `"created_at":"Wed Oct 10 20:19:24 +0000 2018"`
	lines := []string{
		tweetLine("1", "alice", "valid before"),
		`{"retweet_count":0,"id_str":"2","text":`, // invalid JSON
		`{` + created + `,"id_str":"3","text":"no user","retweet_count":0}`,
		`{` + created + `,"id_str":"4","user":{"screen_name":"bob"},"retweet_count":0}`,
		`{` + created + `,"id_str":5,"text":"number id","user":{"screen_name":"bob"},"retweet_count":0}`,
		`{` + created + `,"id_str":"6","text":"number name","user":{"screen_name":42},"retweet_count":0}`,
		`{` + created + `,"id_str":"7","text":"bad ` + "\xff\xfe" + ` bytes","user":{"screen_name":"bob"},"retweet_count":0}`,
		`{"retweet_count":0,"text":"` + strings.Repeat("a", 1<<20) + `"}`, // a 1 MB line
		tweetLine("9", "carol", "valid after"),
	}
	srv := newStreamServer(t,
		sendLines(lines...),
		sendRaw(""), // an empty body
		holdOpen(20*time.Millisecond, tweetLine("10", "dave", "next connection")),
	)
	clock := &fakeClock{auto: true}
	src := newTestSource(t, srv.srv.URL, clock, nil)
	var rec recorder
	runSource(t, src, rec.emit)

	eventually(t, "the tweet on the third connection", func() bool { return slices.Contains(rec.summary(), "msg:10") })
	want := []string{"msg:1", "skip:invalid_json", "skip:missing_user", "skip:missing_text", "skip:invalid_tweet",
		"skip:invalid_tweet", "skip:invalid_utf8", "skip:line_too_long", "msg:9", "msg:10"}
	if got := rec.summary(); !slices.Equal(got, want) {
		t.Errorf("records = %v\nwant      %v", got, want)
	}
	if got, want := clock.recorded(), []time.Duration{0, 250 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v (at once after data, then linear after an empty body)", got, want)
	}
	if got, want := src.Status().LastError, "connection closed before any data"; got != want {
		t.Errorf("last error = %q, want %q", got, want)
	}
}

func TestTwitterSource_StopsOnContextCancel(t *testing.T) {
	tests := []struct {
		name   string
		script http.HandlerFunc
		// ready says the source is where the test wants to cancel it.
		ready func(src *TwitterSource, clock *fakeClock) bool
	}{
		{name: "while connected", script: holdOpen(20*time.Millisecond, tweetLine("1", "a", "x")),
			ready: func(src *TwitterSource, _ *fakeClock) bool { return src.Status().State == StateConnected }},
		{name: "while waiting for headers", script: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			ready: func(src *TwitterSource, _ *fakeClock) bool { live, _ := src.observer.connections(); return live == 1 }},
		{name: "while waiting to reconnect", script: status(401, ""),
			ready: func(_ *TwitterSource, clock *fakeClock) bool { return len(clock.recorded()) == 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			srv := newStreamServer(t, tc.script)
			defer srv.srv.Close()
			clock := &fakeClock{} // never fires: only ctx can end a wait
			src := newTestSource(t, srv.srv.URL, clock, nil)
			stop := runSource(t, src, (&recorder{}).emit)
			eventually(t, "the source to be ready", func() bool { return tc.ready(src, clock) })

			stop()
			if got := src.Status().State; got != StateStopped {
				t.Errorf("state = %s, want stopped", got)
			}
			if live, _ := src.observer.connections(); live != 0 {
				t.Errorf("live connections = %d after Run returned, want 0", live)
			}
		})
	}
}

func TestTwitterSource_RunTwiceIsAnError(t *testing.T) {
	srv := newStreamServer(t, holdOpen(20*time.Millisecond))
	src := newTestSource(t, srv.srv.URL, &fakeClock{}, nil)
	runSource(t, src, (&recorder{}).emit)
	eventually(t, "connected", func() bool { return src.Status().State == StateConnected })
	if err := src.Run(context.Background(), (&recorder{}).emit); err == nil {
		t.Error("second Run returned nil, want an error")
	}
}

func TestNewTwitterSource_ReportsEveryProblem(t *testing.T) {
	long := strings.Repeat("x", 61)
	_, err := NewTwitterSource(TwitterConfig{
		BaseURL:      "ftp://user:" + testCreds.ConsumerSecret + "@example.com",
		Credentials:  Credentials{ConsumerKey: testCreds.ConsumerKey},
		Track:        []string{"ok", " ", long, "a,b"},
		StallTimeout: -time.Second,
		MaxLine:      -1,
	})
	if err == nil {
		t.Fatal("NewTwitterSource accepted a bad config")
	}
	msg := err.Error()
	for _, want := range []string{"BaseURL", "Credentials.ConsumerSecret", "Credentials.AccessToken ",
		"Credentials.AccessTokenSecret", "Track[1] is empty", "Track[2] is 61 bytes", "Track[3] contains a comma",
		"StallTimeout", "MaxLine"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "Credentials.ConsumerKey") {
		t.Errorf("error names ConsumerKey, which is set:\n%s", msg)
	}
	assertNoCredentials(t, msg, testCreds)

	if _, err := NewTwitterSource(TwitterConfig{BaseURL: "http://127.0.0.1:1", Credentials: testCreds,
		Track: make([]string, 401)}); err == nil || !strings.Contains(err.Error(), "at most 400") {
		t.Errorf("401 phrases: err = %v, want one about the 400 limit", err)
	}
}

func TestCredentials_NeverPrinted(t *testing.T) {
	cfg := TwitterConfig{BaseURL: "http://127.0.0.1:1", Credentials: testCreds, Track: []string{"go"}}
	src, err := NewTwitterSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		for _, v := range []any{cfg.Credentials, &cfg.Credentials, cfg, &cfg, src} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	j, _ := json.Marshal(cfg)
	out.Write(j)
	var logs syncbuf.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg, "creds", cfg.Credentials)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg, "creds", cfg.Credentials)
	out.WriteString(logs.String())
	assertNoCredentials(t, out.String(), testCreds)
	if !strings.Contains(out.String(), "REDACTED") {
		t.Errorf("no redacted form in the output:\n%s", out.String())
	}
}

// assertNoCredentials fails if any credential value, or a hex form of one, appears in text.
func assertNoCredentials(t *testing.T, text string, c Credentials) {
	t.Helper()
	for _, v := range credentialValues(c) {
		for _, form := range []string{v, fmt.Sprintf("%x", v), fmt.Sprintf("%X", v)} {
			if strings.Contains(text, form) {
				t.Errorf("a credential value appears in the output")
			}
		}
	}
}

func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }
