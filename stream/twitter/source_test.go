package twitter

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

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/conn"
	"github.com/streammatch/streammatch/stream/internal/streamtest"
)

func TestTwitterSource_DeliversTweetsFromSignedConnection(t *testing.T) {
	srv := newStreamServer(t, streamtest.HoldOpen(20*time.Millisecond,
		tweetLine("1", "alice", "hello golang"),
		"", // a keep-alive
		tweetLine("2", "bob", "the twitter api &amp; me"),
		`{"limit":{"track":7}}`,
	))
	verifying(srv, testCreds)
	var logs syncbuf.Buffer
	src := newTestSource(t, srv.URL, &streamtest.Clock{Auto: true}, &logs)
	var rec streamtest.Recorder
	stop := streamtest.RunSource(t, src, rec.Emit)

	streamtest.Eventually(t, "three records", func() bool { return len(rec.Records()) >= 3 })
	if got, want := rec.Summary(), []string{"msg:1", "msg:2", "notice:limit"}; !slices.Equal(got, want) {
		t.Errorf("records = %v, want %v", got, want)
	}
	recs := rec.Records()
	if got := recs[2].LimitMissed; got != 7 {
		t.Errorf("LimitMissed = %d, want 7", got)
	}
	m := recs[1].Message
	want := stream.Message{ID: "2", User: "bob", Text: "the twitter api & me", Lang: "en", Source: "twitter",
		CreatedAt: time.Date(2018, 10, 10, 20, 19, 24, 0, time.UTC)}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("message = %+v, want %+v", m, want)
	}
	st := src.Status()
	if st.State != stream.StateConnected || st.Connects != 1 || st.Source != "twitter" {
		t.Errorf("status = %+v, want connected with 1 connect", st)
	}
	requests, _, _ := srv.Stats()
	if requests != 1 {
		t.Errorf("requests = %d, want 1", requests)
	}
	form := srv.LastQuery()
	if got := form.Get("track"); got != "golang,twitter api" {
		t.Errorf("track = %q, want %q", got, "golang,twitter api")
	}

	stop()
	if got := src.Status().State; got != stream.StateStopped {
		t.Errorf("state after stop = %s, want stopped", got)
	}
	assertNoCredentials(t, logs.String(), testCreds)
}

func TestTwitterSource_SurfacesRejectedCredentials(t *testing.T) {
	srv := newStreamServer(t, streamtest.SendLines(tweetLine("1", "alice", "never sent")))
	verifying(srv, testCreds)
	wrong := testCreds
	wrong.AccessTokenSecret = "as-Kk4wWRONGaccesssecret"
	clock := &streamtest.Clock{}
	var logs syncbuf.Buffer
	src := newTestSource(t, srv.URL, clock, &logs, func(c *Config) { c.Credentials = wrong })
	var rec streamtest.Recorder
	stop := streamtest.RunSource(t, src, rec.Emit)

	// Each wait blocks until fired, so the request count shows there is no hot loop: exactly
	// one request per wait, and the waits follow the HTTP error schedule.
	schedule := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 160 * time.Second, 320 * time.Second, 320 * time.Second}
	for i, want := range schedule {
		streamtest.Eventually(t, fmt.Sprintf("wait %d", i+1), func() bool { return len(clock.Recorded()) == i+1 })
		if got := clock.Recorded()[i]; got != want {
			t.Fatalf("wait %d = %v, want %v", i+1, got, want)
		}
		st := src.Status()
		if st.State != stream.StateRejected || st.LastError != "credentials rejected (401)" || st.RetryIn != want {
			t.Fatalf("status = %+v, want rejected, %q, retry in %v", st, "credentials rejected (401)", want)
		}
		if _, _, refused := srv.Stats(); refused != i+1 {
			t.Fatalf("requests = %d after %d waits, want %d", refused, i+1, i+1)
		}
		clock.Fire()
	}
	stop()
	if got := rec.Records(); len(got) != 0 {
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
		wantState stream.State
		wantError string // prefix of LastError
	}{
		{name: "503 exponential from 5s", script: []http.HandlerFunc{streamtest.Status(503, "")},
			want: exp(5*s, 8, 320*s), wantState: stream.StateBackoff, wantError: "service unavailable (503)"},
		{name: "500 exponential from 5s", script: []http.HandlerFunc{streamtest.Status(500, "")},
			want: exp(5*s, 8, 320*s), wantState: stream.StateBackoff, wantError: "http error (500)"},
		{name: "404 exponential from 5s", script: []http.HandlerFunc{streamtest.Status(404, "")},
			want: exp(5*s, 8, 320*s), wantState: stream.StateBackoff, wantError: "http error (404)"},
		{name: "410 exponential from 5s", script: []http.HandlerFunc{streamtest.Status(410, "")},
			want: exp(5*s, 8, 320*s), wantState: stream.StateBackoff, wantError: "http error (410)"},
		{name: "403 rejected, exponential from 5s", script: []http.HandlerFunc{streamtest.Status(403, `{"errors":[{"code":261}]}`)},
			want: exp(5*s, 4, 320*s), wantState: stream.StateRejected, wantError: "forbidden (403)"},
		{name: "420 exponential from 60s", script: []http.HandlerFunc{streamtest.Status(420, "")},
			want: exp(60*s, 6, 16*time.Minute), wantState: stream.StateBackoff, wantError: "rate limited (420)"},
		{name: "429 exponential from 60s", script: []http.HandlerFunc{streamtest.Status(429, "")},
			want: exp(60*s, 6, 16*time.Minute), wantState: stream.StateBackoff, wantError: "rate limited (429)"},
		{name: "network error linear 250ms steps to 16s", closed: true,
			want: linear, wantState: stream.StateBackoff, wantError: "network error: "},
		{name: "established then dropped reconnects at once", script: []http.HandlerFunc{streamtest.SendLines(tweet)},
			want: []time.Duration{0, 0, 0, 0}, wantState: stream.StateBackoff, wantError: "connection closed by server"},
		{name: "closed before any data backs off linearly", script: []http.HandlerFunc{streamtest.SendLines()},
			want:      []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond},
			wantState: stream.StateBackoff, wantError: "connection closed before any data"},
		{name: "a connection resets the HTTP schedule",
			script:    []http.HandlerFunc{streamtest.Status(503, ""), streamtest.Status(503, ""), streamtest.SendLines(tweet), streamtest.Status(503, "")},
			want:      []time.Duration{5 * s, 10 * s, 0, 5 * s, 10 * s},
			wantState: stream.StateBackoff, wantError: "service unavailable (503)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := "http://" + streamtest.ClosedPort(t)
			if !tc.closed {
				base = newStreamServer(t, tc.script...).URL
			}
			// The clock lets every wait but the last end at once; the last one holds, so the
			// status can be read in a stable state.
			limit := len(tc.want)
			clock := &streamtest.Clock{Auto: true, HoldAfter: limit - 1}
			src := newTestSource(t, base, clock, nil)
			streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)

			streamtest.Eventually(t, "the schedule", func() bool { return len(clock.Recorded()) == limit })
			if got := clock.Recorded(); !slices.Equal(got, tc.want) {
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
	srv := newStreamServer(t, streamtest.Status(503, ""), streamtest.HoldOpen(20*time.Millisecond, tweetLine("1", "alice", "back")))
	clock := &streamtest.Clock{Auto: true}
	src := newTestSource(t, srv.URL, clock, nil)
	var rec streamtest.Recorder
	streamtest.RunSource(t, src, rec.Emit)

	streamtest.Eventually(t, "the tweet after the 503", func() bool { return len(rec.Messages()) == 1 })
	if got, want := clock.Recorded(), []time.Duration{5 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	st := src.Status()
	if st.State != stream.StateConnected || st.LastError != "service unavailable (503)" || st.Connects != 1 {
		t.Errorf("status = %+v, want connected after a 503", st)
	}
}

func TestTwitterSource_DetectsStall(t *testing.T) {
	t.Run("silence after data is a stall", func(t *testing.T) {
		srv := newStreamServer(t,
			streamtest.Silent(tweetLine("1", "alice", "then silence")),
			streamtest.HoldOpen(20*time.Millisecond, tweetLine("2", "bob", "after the stall")))
		clock := &streamtest.Clock{Auto: true}
		var logs syncbuf.Buffer
		conns := &streamtest.Connections{Next: http.DefaultTransport}
		src := newTestSource(t, srv.URL, clock, &logs, func(c *Config) { c.StallTimeout = 200 * time.Millisecond; c.Transport = conns })
		var rec streamtest.Recorder
		streamtest.RunSource(t, src, rec.Emit)

		streamtest.Eventually(t, "the tweet after the stall", func() bool { return len(rec.Messages()) == 2 })
		if got, want := clock.Recorded(), []time.Duration{250 * time.Millisecond}; !slices.Equal(got, want) {
			t.Errorf("waits = %v, want %v (the network schedule after a stall)", got, want)
		}
		if got, want := src.Status().LastError, "stalled: no data for 200ms"; got != want {
			t.Errorf("last error = %q, want %q", got, want)
		}
		if !strings.Contains(logs.String(), `"state":"stalled"`) {
			t.Errorf("no stalled state in the logs:\n%s", logs.String())
		}
		if _, maxLive := conns.Counts(); maxLive != 1 {
			t.Errorf("connections at once = %d, want 1", maxLive)
		}
	})
	t.Run("silence before the headers is a stall", func(t *testing.T) {
		srv := newStreamServer(t,
			func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			streamtest.HoldOpen(20*time.Millisecond, tweetLine("2", "bob", "after the stall")))
		clock := &streamtest.Clock{Auto: true}
		src := newTestSource(t, srv.URL, clock, nil, func(c *Config) { c.StallTimeout = 200 * time.Millisecond })
		var rec streamtest.Recorder
		streamtest.RunSource(t, src, rec.Emit)

		streamtest.Eventually(t, "the tweet after the stall", func() bool { return len(rec.Messages()) == 1 })
		if got, want := clock.Recorded(), []time.Duration{250 * time.Millisecond}; !slices.Equal(got, want) {
			t.Errorf("waits = %v, want %v (a network-class failure)", got, want)
		}
		if got, want := src.Status().LastError, "stalled: no response for 200ms"; got != want {
			t.Errorf("last error = %q, want %q", got, want)
		}
	})
	t.Run("keep-alives are not a stall", func(t *testing.T) {
		srv := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
			streamtest.SendLines(tweetLine("1", "alice", "first"))(w, r)
			for range 30 { // 1.5 s of keep-alives, every 50 ms
				time.Sleep(50 * time.Millisecond)
				fmt.Fprint(w, "\r\n")
				w.(http.Flusher).Flush()
			}
			fmt.Fprint(w, tweetLine("2", "bob", "second")+"\r\n")
		})
		clock := &streamtest.Clock{} // the first wait holds: one connection only
		src := newTestSource(t, srv.URL, clock, nil, func(c *Config) { c.StallTimeout = time.Second })
		var rec streamtest.Recorder
		streamtest.RunSource(t, src, rec.Emit)

		streamtest.Eventually(t, "the end of the connection", func() bool { return len(clock.Recorded()) == 1 })
		if got, want := rec.Summary(), []string{"msg:1", "msg:2"}; !slices.Equal(got, want) {
			t.Errorf("records = %v, want %v", got, want)
		}
		if got, want := src.Status().LastError, "connection closed by server"; got != want {
			t.Errorf("last error = %q, want %q", got, want)
		}
	})
	t.Run("a slow consumer is not a stall", func(t *testing.T) {
		srv := newStreamServer(t, streamtest.HoldOpen(30*time.Millisecond,
			tweetLine("1", "a", "one"), tweetLine("2", "b", "two"), tweetLine("3", "c", "three")))
		src := newTestSource(t, srv.URL, &streamtest.Clock{Auto: true}, nil, func(c *Config) { c.StallTimeout = 300 * time.Millisecond })
		first := true
		rec := streamtest.Recorder{Block: func() {
			// The worker blocks on a full store queue for longer than the stall timeout. The
			// source is not reading then, so the silence is ours, not the server's.
			if first {
				first = false
				time.Sleep(time.Second)
			}
		}}
		streamtest.RunSource(t, src, rec.Emit)

		streamtest.Eventually(t, "three tweets", func() bool { return len(rec.Messages()) == 3 })
		if requests, _, _ := srv.Stats(); requests != 1 {
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
		streamtest.SendLines(t1),
		streamtest.Status(503, ""),
		streamtest.Hijack("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk(t2+"\r\n")+"400\r\n"+t3[:20]),
		streamtest.SendLines(),
		streamtest.Status(429, ""),
		streamtest.Status(401, ""),
		streamtest.HoldOpen(20*time.Millisecond, t3),
	)
	conns := &streamtest.Connections{Next: http.DefaultTransport}
	src := newTestSource(t, srv.URL, &streamtest.Clock{Auto: true}, nil, func(c *Config) { c.Transport = conns })
	var rec streamtest.Recorder
	streamtest.RunSource(t, src, rec.Emit)

	streamtest.Eventually(t, "the third tweet", func() bool { return len(rec.Messages()) == 3 })
	requests, serverMax, _ := srv.Stats()
	if requests != 7 {
		t.Errorf("requests = %d, want 7: one per attempt", requests)
	}
	if serverMax != 1 {
		t.Errorf("server saw %d connections at once, want 1", serverMax)
	}
	if _, clientMax := conns.Counts(); clientMax != 1 {
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
		{name: "clean close mid-message", first: streamtest.SendRaw(t1 + "\r\n" + t2 + "\r\n" + t3[:len(t3)/2]),
			want: []string{"msg:1", "msg:2", "skip:partial_line", "msg:4"}, wantWaits: []time.Duration{0},
			wantError: "connection closed by server"},
		{name: "reset mid-stream", first: streamtest.Hijack("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunk(t1+"\r\n"+t2+"\r\n") + chunk(t3[:30]) + "400\r\n" + t3[30:40]),
			want: []string{"msg:1", "msg:2", "skip:partial_line", "msg:4"}, wantWaits: []time.Duration{0},
			wantError: "connection lost: unexpected EOF"},
		{name: "before the headers", first: streamtest.Hijack(""),
			want: []string{"msg:4"}, wantWaits: []time.Duration{250 * time.Millisecond},
			wantError: "network error: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStreamServer(t, tc.first, streamtest.HoldOpen(20*time.Millisecond, t4))
			clock := &streamtest.Clock{Auto: true}
			src := newTestSource(t, srv.URL, clock, nil)
			var rec streamtest.Recorder
			streamtest.RunSource(t, src, rec.Emit)

			streamtest.Eventually(t, "the tweet after the drop", func() bool {
				return slices.Contains(rec.Summary(), "msg:4")
			})
			if got := rec.Summary(); !slices.Equal(got, tc.want) {
				t.Errorf("records = %v, want %v", got, tc.want)
			}
			if got := clock.Recorded(); !slices.Equal(got, tc.wantWaits) {
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
		streamtest.SendLines(lines...),
		streamtest.SendRaw(""), // an empty body
		streamtest.HoldOpen(20*time.Millisecond, tweetLine("10", "dave", "next connection")),
	)
	clock := &streamtest.Clock{Auto: true}
	src := newTestSource(t, srv.URL, clock, nil)
	var rec streamtest.Recorder
	streamtest.RunSource(t, src, rec.Emit)

	streamtest.Eventually(t, "the tweet on the third connection", func() bool { return slices.Contains(rec.Summary(), "msg:10") })
	want := []string{"msg:1", "skip:invalid_json", "skip:missing_user", "skip:missing_text", "skip:invalid_tweet",
		"skip:invalid_tweet", "skip:invalid_utf8", "skip:line_too_long", "msg:9", "msg:10"}
	if got := rec.Summary(); !slices.Equal(got, want) {
		t.Errorf("records = %v\nwant      %v", got, want)
	}
	if got, want := clock.Recorded(), []time.Duration{0, 250 * time.Millisecond}; !slices.Equal(got, want) {
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
		ready func(src *Source, clock *streamtest.Clock, conns *streamtest.Connections) bool
	}{
		{name: "while connected", script: streamtest.HoldOpen(20*time.Millisecond, tweetLine("1", "a", "x")),
			ready: func(src *Source, _ *streamtest.Clock, _ *streamtest.Connections) bool {
				return src.Status().State == stream.StateConnected
			}},
		{name: "while waiting for headers", script: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			ready: func(_ *Source, _ *streamtest.Clock, conns *streamtest.Connections) bool {
				live, _ := conns.Counts()
				return live == 1
			}},
		{name: "while waiting to reconnect", script: streamtest.Status(401, ""),
			ready: func(_ *Source, clock *streamtest.Clock, _ *streamtest.Connections) bool {
				return len(clock.Recorded()) == 1
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			srv := newStreamServer(t, tc.script)
			defer srv.Close()
			clock := &streamtest.Clock{} // never fires: only ctx can end a wait
			conns := &streamtest.Connections{Next: conn.NewTransport(DefaultStallTimeout)}
			src := newTestSource(t, srv.URL, clock, nil, func(c *Config) { c.Transport = conns })
			stop := streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
			streamtest.Eventually(t, "the source to be ready", func() bool { return tc.ready(src, clock, conns) })

			stop()
			if got := src.Status().State; got != stream.StateStopped {
				t.Errorf("state = %s, want stopped", got)
			}
			if live, _ := conns.Counts(); live != 0 {
				t.Errorf("live connections = %d after Run returned, want 0", live)
			}
		})
	}
}

func TestTwitterSource_RunTwiceIsAnError(t *testing.T) {
	srv := newStreamServer(t, streamtest.HoldOpen(20*time.Millisecond))
	src := newTestSource(t, srv.URL, &streamtest.Clock{}, nil)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "connected", func() bool { return src.Status().State == stream.StateConnected })
	if err := src.Run(context.Background(), (&streamtest.Recorder{}).Emit); err == nil {
		t.Error("second Run returned nil, want an error")
	}
}

func TestNewSource_ReportsEveryProblem(t *testing.T) {
	long := strings.Repeat("x", 61)
	_, err := NewSource(Config{
		BaseURL:      "ftp://user:" + string(testCreds.ConsumerSecret) + "@example.com",
		Credentials:  Credentials{ConsumerKey: testCreds.ConsumerKey},
		Track:        []string{"ok", " ", long, "a,b"},
		StallTimeout: -time.Second,
		MaxLine:      -1,
	})
	if err == nil {
		t.Fatal("NewSource accepted a bad config")
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

	if _, err := NewSource(Config{BaseURL: "http://127.0.0.1:1", Credentials: testCreds,
		Track: make([]string, 401)}); err == nil || !strings.Contains(err.Error(), "at most 400") {
		t.Errorf("401 phrases: err = %v, want one about the 400 limit", err)
	}
}

func TestCredentials_NeverPrinted(t *testing.T) {
	cfg := Config{BaseURL: "http://127.0.0.1:1", Credentials: testCreds, Track: []string{"go"}}
	src, err := NewSource(cfg)
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

// TestTwitterSource_SendsGoTwitterRequest pins the request: go-twitter's StreamFilterParams
// encoding (POST, track joined with commas, stall_warnings) below the base URL's own path,
// signed for the URL the server sees.
func TestTwitterSource_SendsGoTwitterRequest(t *testing.T) {
	for _, prefix := range []string{"", "/", "/prefix/"} {
		t.Run("base"+prefix, func(t *testing.T) {
			path := strings.TrimSuffix(prefix, "/") + "/1.1/statuses/filter.json"
			srv := streamtest.NewServer(t, http.MethodPost, path, streamtest.HoldOpen(20*time.Millisecond))
			verifying(srv, testCreds)
			src := newTestSource(t, srv.URL+prefix, &streamtest.Clock{}, nil)
			streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
			streamtest.Eventually(t, "connected", func() bool { return src.Status().State == stream.StateConnected })
			q := srv.LastQuery()
			if got := q.Get("track"); got != "golang,twitter api" {
				t.Errorf("track = %q, want %q", got, "golang,twitter api")
			}
			if got := q.Get("stall_warnings"); got != "true" {
				t.Errorf("stall_warnings = %q, want true", got)
			}
		})
	}
}
