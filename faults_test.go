package main

// Faults injected into the whole service, run() against moto_server and the stream simulator:
// dropped and stalled connections, error statuses, malformed lines, and DynamoDB throttling,
// partial batches, errors, slowness and outages through a fault proxy. Every test reads what
// an operator sees: /api/status, /healthz and the JSON log. The package tests of stream/ and
// store/ pin the same behaviour with injected clocks; here the schedule is read from the
// retry_in of /api/status and the "wait" of the log line each connection end writes, so no
// test sleeps through a backoff.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/twitter"
	"github.com/streammatch/streammatch/twittersim"
)

// tweetLine is one v1.1 tweet, written as Twitter wrote it (HTML characters unescaped).
func tweetLine(id int, screenName, name, text string) string {
	type user struct {
		ID         int64  `json:"id"`
		IDStr      string `json:"id_str"`
		ScreenName string `json:"screen_name"`
		Name       string `json:"name"`
	}
	tw := struct {
		CreatedAt     string         `json:"created_at"`
		ID            int64          `json:"id"`
		IDStr         string         `json:"id_str"`
		Text          string         `json:"text"`
		User          user           `json:"user"`
		Entities      map[string]any `json:"entities"`
		RetweetCount  int            `json:"retweet_count"`
		FavoriteCount int            `json:"favorite_count"`
		Lang          string         `json:"lang"`
	}{
		CreatedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Second).Format(twitter.TimeLayout),
		ID:        int64(id), IDStr: fmt.Sprint(id), Text: text,
		User:     user{ID: 42, IDStr: "42", ScreenName: screenName, Name: name},
		Entities: map[string]any{"hashtags": []any{}, "urls": []any{}, "user_mentions": []any{}},
		Lang:     "en",
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tw); err != nil {
		panic(err)
	}
	return strings.TrimSpace(b.String())
}

// send writes a line to the open stream, waiting for one to be open.
func (s *service) send(line string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.sim.Send([]byte(line)) != 1 {
		if time.Now().After(deadline) {
			s.t.Fatalf("no open stream to send to; status %+v", s.status().Stream)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamEnd is the log line the Twitter source writes when a connection ends: why, and how
// long it waits before the next attempt.
type streamEnd struct {
	Msg    string `json:"msg"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	// Wait is logged as Go duration text ("250ms").
	WaitText string `json:"wait"`
	Wait     time.Duration
	Status   int `json:"status"`
}

func streamEnds(logs string) []streamEnd {
	var out []streamEnd
	for _, line := range strings.Split(logs, "\n") {
		var e streamEnd
		if json.Unmarshal([]byte(line), &e) != nil || (e.Msg != "twitter stream ended" && e.Msg != "twitter stream rejected") {
			continue
		}
		var err error
		if e.Wait, err = time.ParseDuration(e.WaitText); err != nil {
			e.Wait = -1 // shows up in any comparison as not what was wanted
		}
		out = append(out, e)
	}
	return out
}

func (s *service) waitForEnds(n int) []streamEnd {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ends := streamEnds(s.stdout.String()); len(ends) >= n {
			return ends
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %d stream ends; logs:\n%s", n, tail(s.stdout.String(), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quiesce stops the simulator's own traffic and waits until the service has taken every line
// the simulator wrote: then the counts of both sides can be compared exactly.
func (s *service) quiesce(extraReceived func(apiStatus) uint64) apiStatus {
	s.t.Helper()
	s.sim.Stall(0)
	return s.waitFor("the service to take every line the simulator wrote", func(st apiStatus) bool {
		sim := s.sim.Stats()
		want := uint64(sim.Messages+sim.Notices+sim.Injected) + extraReceived(st)
		return st.Counters.Received == want && st.QueueDepth == 0 && st.Counters.Written+st.Counters.Failed == st.Counters.Matched
	})
}

// checkCountersAddUp checks the accounting of a quiescent service.
func checkCountersAddUp(t *testing.T, st apiStatus) {
	t.Helper()
	c := st.Counters
	if c.Received != c.Matched+c.Unmatched+c.Skipped {
		t.Errorf("received %d != matched %d + unmatched %d + skipped %d", c.Received, c.Matched, c.Unmatched, c.Skipped)
	}
	if c.Matched != c.Written+c.Failed+uint64(st.QueueDepth) {
		t.Errorf("matched %d != written %d + failed %d + queued %d", c.Matched, c.Written, c.Failed, st.QueueDepth)
	}
	var skipped, failed uint64
	for _, n := range c.SkippedByReason {
		skipped += n
	}
	for _, n := range c.FailedByReason {
		failed += n
	}
	if skipped != c.Skipped || failed != c.Failed {
		t.Errorf("by reason: skipped %d (%v) want %d, failed %d (%v) want %d", skipped, c.SkippedByReason, c.Skipped, failed, c.FailedByReason, c.Failed)
	}
}

// checkTableMatchesWritten checks that every written match is in the table exactly once.
func (s *service) checkTableMatchesWritten(written uint64) {
	s.t.Helper()
	ids := s.scanIDs()
	if uint64(len(ids)) != written {
		s.t.Errorf("items in the table: got %d, want written=%d", len(ids), written)
	}
	for id, n := range ids {
		if n != 1 {
			s.t.Errorf("message %s is in the table %d times, want once", id, n)
		}
	}
}

func TestService_StreamDropsLoseNoCompleteMessage(t *testing.T) {
	tests := []struct {
		name string
		// drop cuts the stream once it flows.
		drop func(s *service)
		// wantError is the start of the last_error /api/status shows afterwards.
		wantError string
		// wantWaits are the waits the source logs for the connection ends, in order.
		wantWaits []time.Duration
		partial   bool // the drop tears a line in two
	}{
		{
			name:      "mid-message",
			drop:      func(s *service) { s.sim.DisconnectAfter(3, true) },
			wantError: "connection lost: unexpected EOF", wantWaits: []time.Duration{0}, partial: true,
		},
		{
			name:      "mid-stream between messages",
			drop:      func(s *service) { s.sim.DisconnectAfter(3, false) },
			wantError: "connection lost: unexpected EOF", wantWaits: []time.Duration{0},
		},
		{
			name: "before the headers",
			drop: func(s *service) {
				s.front.then(cutBeforeHeaders, cutBeforeHeaders)
				s.sim.DisconnectAfter(0, false)
			},
			// Dropped after data: at once. Then two network errors: linear, 250 ms steps.
			wantError: "network error: ",
			wantWaits: []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A long stall timeout: quiesce stalls the simulator to compare counts, and that
			// silence must not be taken for a dead connection here.
			s := startService(t, testCreds, withEnv("STALL_TIMEOUT", "60s"),
				withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive, c.NoticeEvery = 150, 100*time.Millisecond, 5 }))
			s.waitFor("tweets flowing", func(st apiStatus) bool { return st.Counters.Written >= 5 })

			tc.drop(s)
			s.waitForEnds(len(tc.wantWaits))
			s.sim.ClearFaults()
			st := s.waitFor("a new connection with tweets", func(st apiStatus) bool {
				return st.Stream.State == "connected" && st.Stream.Connects >= 2
			})
			matched := st.Counters.Matched
			s.waitFor("tweets after the reconnect", func(st apiStatus) bool { return st.Counters.Matched >= matched+5 })

			partial := func(st apiStatus) uint64 { return st.Counters.SkippedByReason[stream.ReasonPartialLine] }
			st = s.quiesce(partial)
			sim := s.sim.Stats()
			if st.Counters.Matched != uint64(sim.Messages) {
				t.Errorf("matched %d, want every complete tweet the simulator wrote (%d)", st.Counters.Matched, sim.Messages)
			}
			var notices uint64
			for _, n := range st.Counters.Notices {
				notices += n
			}
			if notices != uint64(sim.Notices) {
				t.Errorf("notices %d (%v), want %d", notices, st.Counters.Notices, sim.Notices)
			}
			// Each mid-line drop tears exactly one line; the clean drops tear none. The
			// simulator's fault applies to every connection until cleared, so it may have cut
			// more than one.
			wantPartial := uint64(0)
			if tc.partial {
				wantPartial = uint64(sim.Disconnects)
			}
			if got := partial(st); got != wantPartial || (tc.partial && got == 0) {
				t.Errorf("skipped as partial_line: got %d, want %d (one per torn line)", got, wantPartial)
			}
			checkCountersAddUp(t, st)
			if st.Counters.Failed != 0 {
				t.Errorf("failed %d, want 0", st.Counters.Failed)
			}
			ends := streamEnds(s.stdout.String())
			var waits []time.Duration
			for _, e := range ends[:len(tc.wantWaits)] {
				waits = append(waits, e.Wait)
			}
			if !slices.Equal(waits, tc.wantWaits) {
				t.Errorf("waits before reconnecting: got %v, want %v (ends: %+v)", waits, tc.wantWaits, ends)
			}
			if last := ends[len(tc.wantWaits)-1]; !strings.HasPrefix(last.Reason, tc.wantError) {
				t.Errorf("last end reason: got %q, want %q...", last.Reason, tc.wantError)
			}
			if !strings.HasPrefix(st.Stream.LastError, tc.wantError) {
				t.Errorf("/api/status last_error: got %q, want %q...", st.Stream.LastError, tc.wantError)
			}
			s.stop()
			s.checkTableMatchesWritten(st.Counters.Written)
		})
	}
}

func TestService_StreamErrorStatuses(t *testing.T) {
	tests := []struct {
		status    int
		wantState string
		wantError string
		wantWait  time.Duration
		recovers  bool // the fault ends after one answer and the test waits out the backoff
	}{
		{503, "backoff", "service unavailable (503)", 5 * time.Second, true},
		{420, "backoff", "rate limited (420)", time.Minute, false},
		{429, "backoff", "rate limited (429)", time.Minute, false},
		{401, "rejected", "credentials rejected (401)", 5 * time.Second, false},
		{403, "rejected", "forbidden (403)", 5 * time.Second, false},
		{404, "backoff", "http error (404)", 5 * time.Second, false},
		{410, "backoff", "http error (410)", 5 * time.Second, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			times := 1000
			if tc.recovers {
				times = 1
			}
			s := startService(t, testCreds, withSim(func(c *twittersim.Config) {
				c.Faults = twittersim.Faults{FailStatus: tc.status, FailTimes: times}
			}))
			st := s.waitFor("the first answer to be handled", func(st apiStatus) bool { return st.Stream.LastError != "" })
			if st.Stream.State != tc.wantState || st.Stream.LastError != tc.wantError || st.Stream.RetryIn != tc.wantWait {
				t.Errorf("/api/status stream: got state %q, last_error %q, retry_in %v; want %q, %q, %v",
					st.Stream.State, st.Stream.LastError, st.Stream.RetryIn, tc.wantState, tc.wantError, tc.wantWait)
			}
			ends := s.waitForEnds(1)
			if e := ends[0]; e.Status != tc.status || e.Wait != tc.wantWait || e.State != tc.wantState {
				t.Errorf("log: got %+v, want status %d, wait %v, state %s", e, tc.status, tc.wantWait, tc.wantState)
			}
			wantHealth := "ok"
			if tc.wantState == "rejected" {
				wantHealth = "degraded"
			}
			if code, body := s.get("/healthz"); code != http.StatusOK || !strings.Contains(body, `"`+wantHealth+`"`) {
				t.Errorf("/healthz: got %d %s, want 200 %s (a restart would not fix the stream)", code, body, wantHealth)
			}

			if !tc.recovers {
				// No hot loop: while the status says the next try is seconds away, no request
				// follows. The window is short and real; a slow machine can only make fewer
				// requests, never more.
				for range 10 {
					time.Sleep(50 * time.Millisecond)
					if n := s.front.Requests(); n != 1 {
						t.Fatalf("requests to the stream: got %d within the first wait of %v, want 1", n, tc.wantWait)
					}
				}
				if st := s.status(); st.Stream.State != tc.wantState {
					t.Errorf("state after the window: got %q, want %q", st.Stream.State, tc.wantState)
				}
				return
			}
			// 503 then 200: the source waits its 5 s and connects; the last error stays visible.
			st = s.waitFor("tweets after the 503", func(st apiStatus) bool {
				return st.Stream.State == "connected" && st.Counters.Written > 0
			})
			if st.Stream.LastError != tc.wantError || s.front.Requests() != 2 {
				t.Errorf("after recovery: last_error %q, %d requests; want %q and 2", st.Stream.LastError, s.front.Requests(), tc.wantError)
			}
		})
	}
}

func TestService_StallDetectedAndReconnected(t *testing.T) {
	const stallTimeout = "300ms"
	fast := func(rate float64) serviceOption {
		return withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive = rate, 100*time.Millisecond })
	}
	t.Run("silence right after the headers", func(t *testing.T) {
		t.Parallel()
		s := startService(t, testCreds, withEnv("STALL_TIMEOUT", stallTimeout), fast(100),
			withSim(func(c *twittersim.Config) { c.Faults = twittersim.Faults{Stall: true} }))
		st := s.waitFor("the stall", func(st apiStatus) bool { return st.Stream.LastError != "" })
		if st.Stream.LastError != "stalled: no data for 300ms" {
			t.Errorf("last_error: got %q, want %q", st.Stream.LastError, "stalled: no data for 300ms")
		}
		if e := s.waitForEnds(1)[0]; e.State != "stalled" || e.Wait != 250*time.Millisecond {
			t.Errorf("log: got %+v, want state stalled and the network schedule's first wait, 250ms", e)
		}
		s.sim.ClearFaults()
		s.waitFor("tweets after the stall", func(st apiStatus) bool {
			return st.Stream.State == "connected" && st.Counters.Written > 0
		})
	})
	t.Run("silence after data", func(t *testing.T) {
		t.Parallel()
		s := startService(t, testCreds, withEnv("STALL_TIMEOUT", stallTimeout), fast(100))
		st := s.waitFor("tweets", func(st apiStatus) bool { return st.Counters.Written >= 3 })
		s.sim.Stall(0)
		st = s.waitFor("the stall", func(st apiStatus) bool { return st.Stream.LastError != "" })
		if st.Stream.LastError != "stalled: no data for 300ms" {
			t.Errorf("last_error: got %q, want %q", st.Stream.LastError, "stalled: no data for 300ms")
		}
		s.sim.ClearFaults()
		written := st.Counters.Written
		s.waitFor("tweets after the stall", func(st apiStatus) bool {
			return st.Stream.State == "connected" && st.Stream.Connects >= 2 && st.Counters.Written > written
		})
	})
	t.Run("keep-alives are not a stall", func(t *testing.T) {
		t.Parallel()
		s := startService(t, testCreds, withEnv("STALL_TIMEOUT", stallTimeout), fast(-1))
		// Five stall timeouts of nothing but keep-alives, every 100 ms.
		deadline := time.Now().Add(30 * time.Second)
		for s.sim.Stats().KeepAlives < 15 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		st := s.status()
		if st.Stream.State != "connected" || st.Stream.Connects != 1 || st.Stream.LastError != "" || s.front.Requests() != 1 {
			t.Errorf("after %d keep-alives: state %q, connects %d, last_error %q, requests %d; want connected, 1, none, 1",
				s.sim.Stats().KeepAlives, st.Stream.State, st.Stream.Connects, st.Stream.LastError, s.front.Requests())
		}
	})
}

func TestService_MalformedInputIsSkippedByReason(t *testing.T) {
	s := startService(t, testCreds, withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive = -1, 100*time.Millisecond }))
	s.waitFor("connected", func(st apiStatus) bool { return st.Stream.State == "connected" })

	const created = `"created_at":"Wed May 01 12:00:00 +0000 2024"`
	bad := []struct{ line, reason string }{
		{`{"retweet_count":0,"id_str":"2","text":`, stream.ReasonInvalidJSON},
		{`[1,2,3]`, stream.ReasonInvalidJSON},
		{`null`, stream.ReasonInvalidJSON},
		{`{` + created + `,"id_str":"3","text":"streammatch without user","retweet_count":0}`, stream.ReasonMissingUser},
		{`{` + created + `,"id_str":"4","user":{"screen_name":"bob"},"retweet_count":0}`, stream.ReasonMissingText},
		{"{" + created + `,"id_str":"5","text":"streammatch ` + "\xff\xfe" + `","user":{"screen_name":"bob"},"retweet_count":0}`, stream.ReasonInvalidUTF8},
		{`{"retweet_count":0,"text":"streammatch ` + strings.Repeat("a", 1<<20) + `"}`, stream.ReasonLineTooLong},
		{`{` + created + `,"id_str":6,"text":"streammatch number id","user":{"screen_name":"bob"},"retweet_count":0}`, stream.ReasonInvalidTweet},
		{`{` + created + `,"id_str":"7","text":"streammatch number name","user":{"screen_name":42},"retweet_count":0}`, stream.ReasonInvalidTweet},
		{`{` + created + `,"id_str":"8","text":12345,"user":{"screen_name":"bob"},"retweet_count":0}`, stream.ReasonInvalidTweet},
		{`{}`, "notice_other"},
		{`{"limit":{"track":"many"}}`, stream.ReasonInvalidNotice},
	}
	want := map[string]uint64{}
	for i, b := range bad {
		s.send(b.line)
		want[b.reason]++
		// A valid tweet after each bad line: the stream goes on.
		s.send(tweetLine(1000+i, "alice", "Alice", fmt.Sprintf("streammatch keeps going %d", i)))
	}
	st := s.waitFor("every line counted", func(st apiStatus) bool {
		return st.Counters.Received == uint64(2*len(bad)) && st.Counters.Written == uint64(len(bad))
	})
	for reason, n := range want {
		if got := st.Counters.SkippedByReason[reason]; got != n {
			t.Errorf("skipped as %s: got %d, want %d (all: %v)", reason, got, n, st.Counters.SkippedByReason)
		}
	}
	if st.Counters.Matched != uint64(len(bad)) || st.Counters.Skipped != uint64(len(bad)) {
		t.Errorf("matched %d, skipped %d; want %d each", st.Counters.Matched, st.Counters.Skipped, len(bad))
	}
	checkCountersAddUp(t, st)

	// An empty body: a 200 that ends before any byte. After the drop of a connection that had
	// delivered data the source reconnects at once; that the next one then ends without data
	// makes it back off linearly, 250 ms first, and the stream goes on.
	s.front.then(emptyBody)
	s.sim.DisconnectAfter(0, false)
	ends := s.waitForEnds(2)
	s.sim.ClearFaults()
	if e := ends[0]; e.Wait != 0 {
		t.Errorf("log after the drop: got %+v, want an immediate reconnect", e)
	}
	if e := ends[1]; e.Reason != "connection closed before any data" || e.Wait != 250*time.Millisecond {
		t.Errorf("log after the empty body: got %+v, want %q and a wait of 250ms", e, "connection closed before any data")
	}
	s.waitFor("connected again", func(st apiStatus) bool { return st.Stream.State == "connected" && st.Stream.Connects >= 2 })
	s.send(tweetLine(2000, "carol", "Carol", "streammatch after the empty body"))
	st = s.waitFor("the tweet after the empty body", func(st apiStatus) bool { return st.Counters.Written == uint64(len(bad))+1 })
	checkCountersAddUp(t, st)
	if code, _ := s.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: got %d, want 200", code)
	}
	s.stop()
	s.checkTableMatchesWritten(uint64(len(bad)) + 1)
}

// TestService_DynamoDBFaults drives one service through every DynamoDB fault in turn, with
// the smallest queue, while the simulator streams faster than a faulty table can take. Under
// each fault the queue stays at its limit and reading slows to the writer's pace; afterwards
// every match is in the table exactly once and the counters add up.
func TestService_DynamoDBFaults(t *testing.T) {
	const queueSize = 25
	s := startService(t, testCreds, withDynamoProxy(), withEnv("QUEUE_SIZE", fmt.Sprint(queueSize)),
		withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive, c.NoticeEvery = 400, 100*time.Millisecond, 0 }))
	s.waitFor("tweets flowing", func(st apiStatus) bool { return st.Counters.Written >= 25 })

	phases := []struct {
		name string
		arm  func()
		// hold says whether the fault still lasts, from what the proxy has answered or how
		// long it has been armed.
		hold func(elapsed time.Duration) bool
		// wantBackPressure: the fault slows the writer below the stream's rate for long
		// enough that the queue must reach its limit.
		wantBackPressure bool
		// wantDetail is part of the health detail the writer's error puts on /healthz.
		wantDetail string
	}{
		{name: "ProvisionedThroughputExceeded", arm: func() { s.proxy.ThrottleNext(6) },
			hold:             func(time.Duration) bool { return s.proxy.Stats().Throttled < 6 },
			wantBackPressure: true, wantDetail: "ProvisionedThroughputExceededException"},
		{name: "part of each batch unprocessed", arm: func() { s.proxy.UnprocessedNext(8) },
			hold:       func(time.Duration) bool { return s.proxy.Stats().Unprocessed < 8 },
			wantDetail: "items unprocessed"},
		{name: "HTTP 500", arm: func() { s.proxy.FailNext(6) },
			hold:       func(time.Duration) bool { return s.proxy.Stats().Failed < 6 },
			wantDetail: "InternalServerError"},
		{name: "slow answers", arm: func() { s.proxy.SetDelay(300 * time.Millisecond) },
			hold:             func(elapsed time.Duration) bool { return elapsed < 2*time.Second },
			wantBackPressure: true},
		{name: "unreachable for two seconds", arm: s.proxy.Down,
			hold:             func(elapsed time.Duration) bool { return elapsed < 2*time.Second },
			wantBackPressure: true, wantDetail: "request send failed"},
	}
	for _, ph := range phases {
		before := s.proxy.Stats()
		start := time.Now()
		ph.arm()
		maxQueue, details := 0, map[string]bool{}
		for deadline := start.Add(40 * time.Second); ph.hold(time.Since(start)) || time.Since(start) < time.Second; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the fault never ran its course; proxy %+v", ph.name, s.proxy.Stats())
			}
			st := s.status()
			maxQueue = max(maxQueue, st.QueueDepth)
			details[st.Health.Detail] = true
			c := st.Counters
			// The reading side never races ahead of the writing side by more than the queue
			// and the one match being handed over.
			if st.QueueDepth > queueSize || c.Matched > c.Written+c.Failed+queueSize+1 {
				t.Fatalf("%s: queue_depth %d (limit %d), matched %d, written %d, failed %d: reading raced ahead",
					ph.name, st.QueueDepth, queueSize, c.Matched, c.Written, c.Failed)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := s.proxy.Up(); err != nil {
			t.Fatal(err)
		}
		s.proxy.Clear()
		if ph.wantBackPressure && maxQueue != queueSize {
			t.Errorf("%s: largest queue_depth seen %d, want the limit %d", ph.name, maxQueue, queueSize)
		}
		if ph.wantDetail != "" {
			seen := false
			for d := range details {
				seen = seen || strings.HasPrefix(d, "dynamodb: ") && strings.Contains(d, ph.wantDetail)
			}
			if !seen {
				t.Errorf("%s: health details seen %q, want one naming %q", ph.name, slices.Collect(maps.Keys(details)), ph.wantDetail)
			}
		}
		written := s.status().Counters.Written
		s.waitFor(ph.name+": writes resumed", func(st apiStatus) bool { return st.Counters.Written >= written+50 })
		after := s.proxy.Stats()
		t.Logf("%s: queue peaked at %d; proxy answered %d throttles, %d errors, %d partial batches, %d writes forwarded",
			ph.name, maxQueue, after.Throttled-before.Throttled, after.Failed-before.Failed,
			after.Unprocessed-before.Unprocessed, after.Forwarded-before.Forwarded)
	}

	st := s.quiesce(func(apiStatus) uint64 { return 0 })
	checkCountersAddUp(t, st)
	if st.Counters.Failed != 0 {
		t.Errorf("failed %d (%v), want 0: every fault was shorter than the writer's retry budget", st.Counters.Failed, st.Counters.FailedByReason)
	}
	if sim := s.sim.Stats(); st.Counters.Matched != uint64(sim.Messages) {
		t.Errorf("matched %d, want every tweet the simulator wrote (%d)", st.Counters.Matched, sim.Messages)
	}
	s.stop()
	s.checkTableMatchesWritten(st.Counters.Written)
}
