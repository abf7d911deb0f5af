package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// replayTweet is a minimal v1.1 tweet line.
func replayTweet(id, user string) string {
	return `{"retweet_count":0,"id_str":"` + id + `","text":"hello","user":{"screen_name":"` + user + `"},"created_at":"Wed Oct 10 20:19:24 +0000 2018"}`
}

// replaySummary renders a record as "msg:ID", "notice:type" or "skip:reason".
func replaySummary(rec stream.Record) string {
	switch rec.Kind {
	case stream.KindMessage:
		return "msg:" + rec.Message.ID
	case stream.KindNotice:
		return "notice:" + rec.Notice
	}
	return "skip:" + rec.Reason
}

func TestReplayLines(t *testing.T) {
	tweet := `{"retweet_count":0,"id_str":"1","text":"hi","user":{"screen_name":"a"},"created_at":"Wed Oct 10 20:19:24 +0000 2018"}`
	tests := []struct {
		name string
		data string
		want []string
	}{
		{name: "ndjson with CRLF and keep-alives", data: tweet + "\r\n\r\n{\"delete\":{}}\r\n", want: []string{tweet, `{"delete":{}}`}},
		{name: "ndjson without a final newline", data: "{\"a\":1}\n{\"b\":2}", want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "invalid lines are kept", data: "{\"a\":\n", want: []string{`{"a":`}},
		{name: "search result, compacted", data: "{\"statuses\": [\n {\"a\": 1},\n {\"b\": [2, 3]}\n], \"search_metadata\": {}}", want: []string{`{"a":1}`, `{"b":[2,3]}`}},
		{name: "array", data: ` [{"a": 1}, {"b": 2}] `, want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "single tweet", data: tweet, want: []string{tweet}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := ReplayLines([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range lines {
				got = append(got, string(l))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ReplayLines([]byte(`[1,`)); err == nil {
		t.Error("a broken array: got no error, want one")
	}
}

func writeReplayFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "replay.ndjson")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplaySource_ReplaysLoopsThroughDecodeLine(t *testing.T) {
	data := replayTweet("1", "alice") + "\n{\"limit\":{\"track\":5}}\nnot json\n"
	src, err := NewReplaySource(ReplayConfig{Path: writeReplayFile(t, data), Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = src.Run(context.Background(), func(_ context.Context, rec stream.Record) {
		got = append(got, replaySummary(rec))
		if rec.Kind == stream.KindMessage && rec.Message.Source != ReplaySourceName {
			t.Errorf("Source = %q, want %q", rec.Message.Source, ReplaySourceName)
		}
	})
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	want := "msg:1 notice:limit skip:invalid_json msg:1 notice:limit skip:invalid_json"
	if strings.Join(got, " ") != want {
		t.Errorf("records = %s, want %s", strings.Join(got, " "), want)
	}
	if st := src.Status(); st.State != stream.StateStopped || st.Connects != 1 || st.Source != "replay" {
		t.Errorf("status = %+v, want stopped after 1 connect", st)
	}
}

func TestReplaySource_StopsWhenContextEnds(t *testing.T) {
	src, err := NewReplaySource(ReplayConfig{Path: writeReplayFile(t, replayTweet("1", "a")+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = src.Run(ctx, func(context.Context, stream.Record) {
		if n++; n == 1000 { // Loops 0 replays forever: only ctx ends it
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if n < 1000 || n > 1000+64 {
		t.Errorf("emitted %d records, want 1000 plus at most one check interval", n)
	}
}

// TestReplaySource_PacesToRate runs the pacing against a fake clock: each sleep advances it, so
// the test checks the schedule, not the machine's timers.
func TestReplaySource_PacesToRate(t *testing.T) {
	src, err := NewReplaySource(ReplayConfig{Path: writeReplayFile(t, replayTweet("1", "a")+"\n"), Rate: 100, Loops: 50})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2013, 8, 3, 0, 0, 0, 0, time.UTC)
	start := clock
	var sleeps int
	src.now = func() time.Time { return clock }
	src.sleep = func(_ context.Context, d time.Duration) error {
		sleeps++
		clock = clock.Add(d)
		return nil
	}
	var emittedAt []time.Duration
	if err := src.Run(context.Background(), func(context.Context, stream.Record) {
		emittedAt = append(emittedAt, clock.Sub(start))
	}); err != nil {
		t.Fatal(err)
	}
	if len(emittedAt) != 50 {
		t.Fatalf("emitted %d, want 50", len(emittedAt))
	}
	for i, at := range emittedAt {
		if want := time.Duration(i) * 10 * time.Millisecond; at != want {
			t.Errorf("line %d emitted at %v, want %v", i, at, want)
		}
	}
	if sleeps != 49 {
		t.Errorf("slept %d times, want 49", sleeps)
	}
}

func TestNewReplaySource_Errors(t *testing.T) {
	tests := []struct {
		name string
		cfg  ReplayConfig
		want string
	}{
		{name: "no path", cfg: ReplayConfig{}, want: "no file"},
		{name: "missing file", cfg: ReplayConfig{Path: filepath.Join(t.TempDir(), "absent")}, want: "no such file"},
		{name: "empty file", cfg: ReplayConfig{Path: writeReplayFile(t, "\n\n")}, want: "no lines"},
		{name: "negative loops", cfg: ReplayConfig{Path: writeReplayFile(t, "{}\n"), Loops: -1}, want: "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReplaySource(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestReplaySource_TwitterJSON replays the real tweets: every one must come out a message.
func TestReplaySource_TwitterJSON(t *testing.T) {
	lines := corpusLines(t)
	path, err := corpusPath()
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewReplaySource(ReplayConfig{Path: path, Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	msgs := 0
	_ = src.Run(context.Background(), func(_ context.Context, rec stream.Record) {
		if rec.Kind == stream.KindMessage {
			msgs++
		} else {
			t.Errorf("record %s, want a message", replaySummary(rec))
		}
	})
	if msgs != len(lines) {
		t.Errorf("messages = %d, want %d", msgs, len(lines))
	}
}
