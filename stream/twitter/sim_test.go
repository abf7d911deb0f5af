package twitter_test

// These tests run the Twitter source against twittersim, the project's v1.1 simulator, which
// verifies OAuth 1.0a signatures independently of the client library. They live in the
// external test package because twittersim imports the stream core.

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/twitter"
	"github.com/streammatch/streammatch/twittersim"
)

var simCreds = twitter.Credentials{
	ConsumerKey:       "sim-ck-4hJ9LEAKCHECK",
	ConsumerSecret:    "sim-cs-8kP2LEAKCHECK",
	AccessToken:       "sim-at-1mQ7LEAKCHECK",
	AccessTokenSecret: "sim-as-6nR3LEAKCHECK",
}

type simRun struct {
	sim *twittersim.Server
	src *twitter.Source

	mu      sync.Mutex
	records []stream.Record
	waits   []time.Duration
}

func (r *simRun) emit(_ context.Context, rec stream.Record) {
	r.mu.Lock()
	r.records = append(r.records, rec)
	r.mu.Unlock()
}

// after records each reconnect wait and waits at most 300 ms of it in real time: long enough
// for the 250 ms a stall brings (which lets the simulator see the old connection close before
// the new one arrives), short enough to keep HTTP error schedules from slowing the test.
func (r *simRun) after(d time.Duration) <-chan time.Time {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return time.After(min(d, 300*time.Millisecond))
}

func (r *simRun) count(kind stream.RecordKind, reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if rec.Kind == kind && (reason == "" || rec.Reason == reason) {
			n++
		}
	}
	return n
}

func (r *simRun) recordedWaits() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// startSim serves a simulator and runs a Twitter source against it until the test ends.
func startSim(t *testing.T, simCfg twittersim.Config, clientCreds twitter.Credentials, stall time.Duration) *simRun {
	t.Helper()
	simCfg.Credentials = twittersim.Credentials{
		ConsumerKey: string(simCreds.ConsumerKey), ConsumerSecret: string(simCreds.ConsumerSecret),
		AccessToken: string(simCreds.AccessToken), AccessTokenSecret: string(simCreds.AccessTokenSecret),
	}
	sim, err := twittersim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	r := &simRun{sim: sim}
	src, err := twitter.NewSource(twitter.Config{
		BaseURL:      hs.URL,
		Credentials:  clientCreds,
		Track:        []string{"golang", "twitter api"},
		StallTimeout: stall,
		After:        r.after,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.src = src
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, r.emit) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
		sim.Close()
		hs.Close()
	})
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTwitterSource_Simulator_DeliversSignedStream(t *testing.T) {
	r := startSim(t, twittersim.Config{Rate: 200, KeepAlive: 50 * time.Millisecond, NoticeEvery: 5, Seed: 1},
		simCreds, 0)
	waitUntil(t, "20 tweets and some notices", func() bool {
		return r.count(stream.KindMessage, "") >= 20 && r.count(stream.KindNotice, "") >= 2
	})
	st := r.sim.Stats()
	if st.Unauthorized != 0 || st.Connects != 1 || st.MaxConnections != 1 {
		t.Errorf("simulator stats = %+v, want one authorised connection", st)
	}
	if st.LastTrack != "golang,twitter api" {
		t.Errorf("track sent = %q, want %q", st.LastTrack, "golang,twitter api")
	}
	if got := r.count(stream.KindSkipped, ""); got != 0 {
		t.Errorf("skipped %d records of a clean stream, want 0", got)
	}
	if s := r.src.Status(); s.State != stream.StateConnected {
		t.Errorf("state = %s, want connected", s.State)
	}
}

func TestTwitterSource_Simulator_RejectsWrongSignature(t *testing.T) {
	wrong := simCreds
	wrong.ConsumerSecret = "sim-cs-WRONG"
	r := startSim(t, twittersim.Config{Rate: 50, KeepAlive: 50 * time.Millisecond}, wrong, 0)
	waitUntil(t, "three rejected attempts", func() bool { return len(r.recordedWaits()) >= 3 })
	s := r.src.Status()
	if s.State != stream.StateRejected && s.State != stream.StateConnecting {
		t.Errorf("state = %s, want rejected (or connecting again)", s.State)
	}
	if s.LastError != "credentials rejected (401)" {
		t.Errorf("last error = %q, want %q", s.LastError, "credentials rejected (401)")
	}
	if got := r.recordedWaits()[:3]; got[0] != 5*time.Second || got[1] != 10*time.Second || got[2] != 20*time.Second {
		t.Errorf("waits = %v, want 5s, 10s, 20s", got)
	}
	if st := r.sim.Stats(); st.Unauthorized < 3 || st.Connects != 0 {
		t.Errorf("simulator stats = %+v, want only 401s", st)
	}
}

func TestTwitterSource_Simulator_Faults(t *testing.T) {
	r := startSim(t, twittersim.Config{Rate: 200, KeepAlive: 50 * time.Millisecond, Seed: 2}, simCreds, 300*time.Millisecond)
	waitUntil(t, "a first tweet", func() bool { return r.count(stream.KindMessage, "") >= 1 })

	// A torn line and a dropped connection: the partial line is counted, the stream goes on.
	r.sim.DisconnectAfter(3, true)
	waitUntil(t, "a partial line", func() bool { return r.count(stream.KindSkipped, "partial_line") >= 1 })
	r.sim.ClearFaults()
	before := r.count(stream.KindMessage, "")
	waitUntil(t, "tweets after the drop", func() bool { return r.count(stream.KindMessage, "") > before+3 })

	// Malformed lines are skipped by reason, on the same connection.
	for _, line := range []string{
		`{"retweet_count":0,`,
		`{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id_str":5,"text":"x","user":{"screen_name":"a"},"retweet_count":0}`,
		"{\"text\":\"\xff\"}",
		`{"retweet_count":0,"text":"` + strings.Repeat("a", 1<<20) + `"}`,
	} {
		if n := r.sim.Send([]byte(line)); n != 1 {
			t.Fatalf("Send reached %d streams, want 1", n)
		}
	}
	for _, reason := range []string{"invalid_json", "invalid_tweet", "invalid_utf8", "line_too_long"} {
		waitUntil(t, reason, func() bool { return r.count(stream.KindSkipped, reason) >= 1 })
	}

	// A stall: detected, and the source reconnects.
	connects := r.sim.Stats().Connects
	r.sim.Stall(0)
	waitUntil(t, "a stall", func() bool { return strings.HasPrefix(r.src.Status().LastError, "stalled: ") })
	r.sim.ClearFaults()
	waitUntil(t, "a reconnect after the stall", func() bool { return r.sim.Stats().Connects > connects })
	before = r.count(stream.KindMessage, "")
	waitUntil(t, "tweets after the stall", func() bool { return r.count(stream.KindMessage, "") > before+3 })

	// A drop, then 503, then 200: the 503 brings the HTTP error schedule's first wait.
	waitsBefore := len(r.recordedWaits())
	r.sim.FailNext(503, 1)
	r.sim.DisconnectAfter(0, false)
	waitUntil(t, "the wait after the 503", func() bool {
		return slices.Contains(r.recordedWaits()[waitsBefore:], 5*time.Second)
	})
	r.sim.ClearFaults()
	waitUntil(t, "connected again", func() bool { return r.src.Status().State == stream.StateConnected })

	if st := r.sim.Stats(); st.MaxConnections != 1 {
		t.Errorf("simulator saw %d connections at once, want 1", st.MaxConnections)
	}
}
