package twittersim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dghubble/oauth1"
	"go.uber.org/goleak"
)

// texts collects everything track matching looks at, lower-cased, from a tweet and its
// retweeted and quoted originals.
func texts(tw *tweetJSON) string {
	if tw == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(tw.Text + " " + tw.fullText() + " ")
	for _, e := range []*entitiesJSON{tw.Entities, extendedEntities(tw)} {
		if e == nil {
			continue
		}
		for _, h := range e.Hashtags {
			b.WriteString(h.Text + " ")
		}
		for _, m := range e.UserMentions {
			b.WriteString(m.ScreenName + " ")
		}
		for _, u := range e.URLs {
			b.WriteString(u.ExpandedURL + " " + u.DisplayURL + " ")
		}
	}
	b.WriteString(texts(tw.RetweetedStatus))
	b.WriteString(texts(tw.QuotedStatus))
	return strings.ToLower(b.String())
}

func TestServer_HonoursTrack(t *testing.T) {
	s, ts := newSim(t, Config{Rate: 2000, Seed: 7})
	resp := openStream(t, ts, testCreds, "golang, Fargate task")
	lr := newLineReader(resp.Body)
	for i := range 200 {
		line := lr.nextData(t)
		tw := decodeTweet(t, line)
		all := texts(tw)
		// A substring test is weaker than word matching, so it is a fair necessary condition
		// that does not reuse the matcher under test.
		if !strings.Contains(all, "golang") && !(strings.Contains(all, "fargate") && strings.Contains(all, "task")) {
			t.Fatalf("message %d does not carry a track phrase: %s", i, line)
		}
	}
	if got, want := s.Stats().LastTrack, "golang, Fargate task"; got != want {
		t.Errorf("last track: got %q, want %q", got, want)
	}
}

func TestServer_FramesMessagesWithCRLF(t *testing.T) {
	_, ts := newSim(t, Config{Rate: 1000, Seed: 2, KeepAlive: time.Hour})
	resp := openStream(t, ts, testCreds, "golang")
	// Read raw bytes: every message must end in "\r\n" and be one valid JSON object.
	var buf []byte
	chunk := make([]byte, 4096)
	for bytes.Count(buf, []byte("\r\n")) < 50 {
		n, err := resp.Body.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	parts := bytes.Split(buf, []byte("\r\n"))
	for _, p := range parts[:len(parts)-1] {
		if !json.Valid(p) || !utf8.Valid(p) || bytes.ContainsAny(p, "\r\n") {
			t.Fatalf("message is not one line of valid JSON: %q", p)
		}
	}
}

func TestServer_SendsKeepAlives(t *testing.T) {
	s, ts := newSim(t, Config{Rate: -1, KeepAlive: 5 * time.Millisecond})
	resp := openStream(t, ts, testCreds, "golang")
	lr := newLineReader(resp.Body)
	for range 3 {
		line, err := lr.next()
		if err != nil || len(line) != 0 {
			t.Fatalf("got %q, %v; want a keep-alive (empty line)", line, err)
		}
	}
	// The counter moves just after the write, so the client can be ahead of it.
	waitFor(t, "three keep-alives counted", func() bool { return s.Stats().KeepAlives >= 3 })
	if got := s.Stats().Messages; got != 0 {
		t.Errorf("messages: got %d, want 0", got)
	}
}

func TestServer_MixesInNotices(t *testing.T) {
	s, ts := newSim(t, Config{Rate: 1000, Seed: 4, NoticeEvery: 2, KeepAlive: time.Hour})
	resp := openStream(t, ts, testCreds, "golang")
	lr := newLineReader(resp.Body)
	var lastID string
	for i := range 9 {
		line := lr.nextData(t)
		var probe struct {
			IDStr  string `json:"id_str"`
			Delete *struct {
				Status struct {
					IDStr     string `json:"id_str"`
					UserIDStr string `json:"user_id_str"`
				} `json:"status"`
			} `json:"delete"`
			Limit *struct {
				Track int64 `json:"track"`
			} `json:"limit"`
		}
		if err := json.Unmarshal(line, &probe); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		switch i % 6 {
		case 2:
			if probe.Delete == nil || probe.Delete.Status.IDStr != lastID || probe.Delete.Status.UserIDStr == "" {
				t.Fatalf("message %d: got %s, want a delete notice for %s", i, line, lastID)
			}
		case 5:
			if probe.Limit == nil || probe.Limit.Track < 1 {
				t.Fatalf("message %d: got %s, want a limit notice", i, line)
			}
		default:
			if probe.IDStr == "" || probe.Delete != nil || probe.Limit != nil {
				t.Fatalf("message %d: got %s, want a tweet", i, line)
			}
			lastID = probe.IDStr
		}
	}
	waitFor(t, "the messages counted", func() bool {
		st := s.Stats()
		return st.Notices >= 3 && st.Messages >= 6
	})
}

func TestServer_RejectsBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		want   int
	}{
		{"unknown path", http.MethodPost, "/1.1/statuses/sample.json?track=golang", http.StatusNotFound},
		{"PUT", http.MethodPut, FilterPath + "?track=golang", http.StatusMethodNotAllowed},
		{"no track", http.MethodPost, FilterPath, http.StatusNotAcceptable},
		{"term over 60 bytes", http.MethodPost, FilterPath + "?track=" + strings.Repeat("a", 61), http.StatusNotAcceptable},
		{"401 terms", http.MethodPost, FilterPath + "?track=" + strings.Repeat("a,", 400) + "a", http.StatusRequestEntityTooLarge},
		{"GET is accepted", http.MethodGet, FilterPath + "?track=golang", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newSim(t, Config{Rate: -1})
			resp := doStream(t, signedClient(t, testCreds, nil), tt.method, ts.URL+tt.path)
			if resp.StatusCode != tt.want {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status: got %d (%s), want %d", resp.StatusCode, b, tt.want)
			}
		})
	}
}

func TestServer_FailNext(t *testing.T) {
	s, ts := newSim(t, Config{Rate: -1, Faults: Faults{FailStatus: 420, FailTimes: 1}})
	s.FailNext(http.StatusServiceUnavailable, 2)
	for i, want := range []int{503, 503, 200} {
		resp := openStream(t, ts, testCreds, "golang")
		if resp.StatusCode != want {
			t.Fatalf("request %d: got %d, want %d", i, resp.StatusCode, want)
		}
		if want != 200 {
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), `"errors"`) {
				t.Errorf("request %d: body %s, want a Twitter error body", i, b)
			}
		}
	}
	if got := s.Stats(); got.Failed != 2 || got.Connects != 1 {
		t.Errorf("stats: got failed %d connects %d, want 2 and 1", got.Failed, got.Connects)
	}
}

func TestServer_FailNextFromConfig(t *testing.T) {
	_, ts := newSim(t, Config{Rate: -1, Faults: Faults{FailStatus: 420, FailTimes: 1}})
	for i, want := range []int{420, 200} {
		if got := openStream(t, ts, testCreds, "golang").StatusCode; got != want {
			t.Fatalf("request %d: got %d, want %d", i, got, want)
		}
	}
}

func TestServer_DisconnectAfter(t *testing.T) {
	for _, midLine := range []bool{false, true} {
		name := map[bool]string{false: "between lines", true: "mid line"}[midLine]
		t.Run(name, func(t *testing.T) {
			s, ts := newSim(t, Config{Rate: 1000, Seed: 5, KeepAlive: time.Hour,
				Faults: Faults{Disconnect: true, DisconnectAfter: 3, MidLine: midLine}})
			resp := openStream(t, ts, testCreds, "golang")
			lr := newLineReader(resp.Body)
			for range 3 {
				lr.nextData(t)
			}
			rest, err := lr.next()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("after 3 messages: got %q, %v; want an unexpected EOF", rest, err)
			}
			if midLine && (len(rest) == 0 || json.Valid(rest)) {
				t.Errorf("mid line: got %q, want half a message", rest)
			}
			if !midLine && len(rest) != 0 {
				t.Errorf("between lines: got %q, want nothing", rest)
			}
			waitFor(t, "the dropped stream to be counted", func() bool {
				st := s.Stats()
				return st.Disconnects == 1 && st.Connections == 0
			})
		})
	}
}

func TestServer_DisconnectAfterAtRuntime(t *testing.T) {
	s, ts := newSim(t, Config{Rate: 500, Seed: 6, KeepAlive: time.Hour})
	resp := openStream(t, ts, testCreds, "golang")
	lr := newLineReader(resp.Body)
	lr.nextData(t)
	s.DisconnectAfter(1, false)
	for {
		if _, err := lr.next(); err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %v, want an unexpected EOF", err)
			}
			break
		}
	}
	s.ClearFaults()
	resp2 := openStream(t, ts, testCreds, "golang")
	newLineReader(resp2.Body).nextData(t)
	if got := s.Stats(); got.Disconnects != 1 || got.Connects != 2 {
		t.Errorf("stats: got disconnects %d connects %d, want 1 and 2", got.Disconnects, got.Connects)
	}
}

func TestServer_Stall(t *testing.T) {
	for _, after := range []int{0, 2} {
		t.Run(map[int]string{0: "after headers", 2: "after 2 messages"}[after], func(t *testing.T) {
			s, ts := newSim(t, Config{Rate: 1000, Seed: 8, KeepAlive: 2 * time.Millisecond,
				Faults: Faults{Stall: true, StallAfter: after}})
			resp := openStream(t, ts, testCreds, "golang")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status: got %d, want 200", resp.StatusCode)
			}
			lr := newLineReader(resp.Body)
			for range after {
				lr.nextData(t)
			}
			waitFor(t, "the stall", func() bool { return s.Stats().Stalls == 1 })
			// Give a broken stall plenty of keep-alive ticks to show itself; the assertion
			// below does not depend on how long this takes.
			time.Sleep(50 * time.Millisecond)
			if n := s.Send([]byte("marker")); n != 1 {
				t.Fatalf("Send: got %d streams, want 1", n)
			}
			line, err := lr.next()
			if err != nil || string(line) != "marker" {
				t.Fatalf("first line after the stall: got %q, %v; want the marker and nothing before it", line, err)
			}
			if got := s.Stats(); got.Messages != int64(after) {
				t.Errorf("messages: got %d, want %d", got.Messages, after)
			}
		})
	}
}

func TestServer_SendWritesExactLines(t *testing.T) {
	tests := []struct {
		name string
		line []byte
	}{
		{"invalid JSON", []byte(`{"text":"unterminated`)},
		{"invalid UTF-8", []byte("{\"text\":\"\xff\xfe\xc3\"}")},
		{"tweet with a bare newline", []byte("{\"text\":\"a\nb\"}")},
		{"one megabyte", bytes.Repeat([]byte("x"), 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newSim(t, Config{Rate: -1, KeepAlive: time.Hour})
			resp := openStream(t, ts, testCreds, "golang")
			waitFor(t, "the stream", func() bool { return s.Stats().Connections == 1 })
			sent := make(chan int, 1)
			go func() { sent <- s.Send(tt.line) }()
			got, err := newLineReader(resp.Body).next()
			if err != nil || !bytes.Equal(got, tt.line) {
				t.Fatalf("got %d bytes (%v), want the %d bytes sent", len(got), err, len(tt.line))
			}
			if n := <-sent; n != 1 {
				t.Errorf("Send: got %d streams, want 1", n)
			}
			if got := s.Stats().Injected; got != 1 {
				t.Errorf("injected: got %d, want 1", got)
			}
		})
	}
}

func TestServer_CountsConnections(t *testing.T) {
	s, ts := newSim(t, Config{Rate: -1})
	var bodies []io.Closer
	for range 3 {
		bodies = append(bodies, openStream(t, ts, testCreds, "golang").Body)
	}
	waitFor(t, "three streams", func() bool { return s.Stats().Connections == 3 })
	bodies[0].Close()
	bodies[1].Close()
	waitFor(t, "one stream", func() bool { return s.Stats().Connections == 1 })
	got := s.Stats()
	if got.MaxConnections != 3 || got.Connects != 3 || got.Requests != 3 {
		t.Errorf("stats: got max %d connects %d requests %d, want 3, 3, 3", got.MaxConnections, got.Connects, got.Requests)
	}
	if n := s.Send([]byte("{}")); n != 1 {
		t.Errorf("Send: got %d streams, want 1", n)
	}
}

func TestServer_CloseEndsStreamsAndLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := New(Config{Credentials: testCreds, Rate: 1000, KeepAlive: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	client := oauth1.NewConfig(testCreds.ConsumerKey, testCreds.ConsumerSecret).Client(
		context.WithValue(ctx, oauth1.HTTPClient, &http.Client{Transport: tr}),
		oauth1.NewToken(testCreds.AccessToken, testCreds.AccessTokenSecret))
	post := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+FilterPath+"?track=golang", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	reading := post()
	defer reading.Body.Close()
	newLineReader(reading.Body).nextData(t)
	// A client that never reads: the 8 MB line fills the socket buffers and blocks the
	// stream's write, which Close must still end.
	stuck := post()
	defer stuck.Body.Close()
	if stuck.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", stuck.StatusCode)
	}
	sent := make(chan int, 1)
	go func() { sent <- s.Send(bytes.Repeat([]byte("y"), 8<<20)) }()

	s.Close()
	<-sent
	waitFor(t, "the streams to end", func() bool { return s.Stats().Connections == 0 })
	after := post()
	io.Copy(io.Discard, after.Body)
	after.Body.Close()
	if after.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: got %d, want 503", after.StatusCode)
	}
	reading.Body.Close()
	stuck.Body.Close()
	srv.Close() // returns only once every handler has returned
	tr.CloseIdleConnections()
}
