package conn

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/streammatch/streammatch/stream"
)

func TestReconnectPolicy(t *testing.T) {
	ms := time.Millisecond
	s := time.Second
	reset := errors.New("read: connection reset by peer")
	type step struct {
		end    End
		wait   time.Duration
		state  stream.State
		reason string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "network errors: +250ms a try, up to 16s", steps: []step{
			{End{Kind: EndNetwork, Err: reset}, 250 * ms, stream.StateBackoff, "network error: read: connection reset by peer"},
			{End{Kind: EndNetwork, Err: reset}, 500 * ms, stream.StateBackoff, "network error: read: connection reset by peer"},
			{End{Kind: EndNetwork, Err: reset}, 750 * ms, stream.StateBackoff, "network error: read: connection reset by peer"},
		}},
		{name: "no headers within the stall timeout is a network-class stall", steps: []step{
			{End{Kind: EndNetwork, Stalled: true}, 250 * ms, stream.StateStalled, "stalled: no response for 90s"},
		}},
		{name: "HTTP errors: 5s doubling to 320s", steps: []step{
			{End{Kind: EndHTTP, Status: 500}, 5 * s, stream.StateBackoff, "http error (500)"},
			{End{Kind: EndHTTP, Status: 502}, 10 * s, stream.StateBackoff, "http error (502)"},
			{End{Kind: EndHTTP, Status: 503}, 20 * s, stream.StateBackoff, "service unavailable (503)"},
		}},
		{name: "401 and 403 are rejected, on the HTTP schedule", steps: []step{
			{End{Kind: EndHTTP, Status: 401}, 5 * s, stream.StateRejected, "credentials rejected (401)"},
			{End{Kind: EndHTTP, Status: 403}, 10 * s, stream.StateRejected, "forbidden (403)"},
		}},
		{name: "420 and 429: from one minute", steps: []step{
			{End{Kind: EndHTTP, Status: 420}, 60 * s, stream.StateBackoff, "rate limited (420)"},
			{End{Kind: EndHTTP, Status: 429}, 120 * s, stream.StateBackoff, "rate limited (429)"},
		}},
		{name: "a dropped connection that delivered data: at once, every time", steps: []step{
			{End{Kind: EndDropped, Lines: 3}, 0, stream.StateBackoff, "connection closed by server"},
			{End{Kind: EndDropped, Lines: 1, Err: reset}, 0, stream.StateBackoff, "connection lost: read: connection reset by peer"},
			{End{Kind: EndDropped, Lines: 2}, 0, stream.StateBackoff, "connection closed by server"},
		}},
		{name: "connections that deliver nothing slow down linearly", steps: []step{
			{End{Kind: EndDropped}, 0, stream.StateBackoff, "connection closed before any data"},
			{End{Kind: EndDropped}, 250 * ms, stream.StateBackoff, "connection closed before any data"},
			{End{Kind: EndDropped}, 500 * ms, stream.StateBackoff, "connection closed before any data"},
		}},
		{name: "stalls take the network schedule", steps: []step{
			{End{Kind: EndDropped, Lines: 1, Stalled: true}, 250 * ms, stream.StateStalled, "stalled: no data for 90s"},
			{End{Kind: EndDropped, Stalled: true}, 500 * ms, stream.StateStalled, "stalled: no data for 90s"},
			{End{Kind: EndNetwork, Stalled: true}, 750 * ms, stream.StateStalled, "stalled: no response for 90s"},
			{End{Kind: EndDropped, Lines: 1, Stalled: true}, 250 * ms, stream.StateStalled, "stalled: no data for 90s"},
		}},
		{name: "a connection resets every schedule", steps: []step{
			{End{Kind: EndHTTP, Status: 503}, 5 * s, stream.StateBackoff, "service unavailable (503)"},
			{End{Kind: EndHTTP, Status: 429}, 60 * s, stream.StateBackoff, "rate limited (429)"},
			{End{Kind: EndNetwork, Err: reset}, 250 * ms, stream.StateBackoff, "network error: read: connection reset by peer"},
			{End{Kind: EndDropped, Lines: 1}, 0, stream.StateBackoff, "connection closed by server"},
			{End{Kind: EndHTTP, Status: 503}, 5 * s, stream.StateBackoff, "service unavailable (503)"},
			{End{Kind: EndHTTP, Status: 429}, 60 * s, stream.StateBackoff, "rate limited (429)"},
			{End{Kind: EndNetwork, Err: reset}, 250 * ms, stream.StateBackoff, "network error: read: connection reset by peer"},
		}},
		{name: "stop", steps: []step{{End{Kind: EndStopped}, 0, stream.StateStopped, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(90 * time.Second)
			for i, st := range tc.steps {
				wait, state, reason := p.next(st.end)
				if wait != st.wait || state != st.state || reason != st.reason {
					t.Errorf("step %d: got %v, %s, %q; want %v, %s, %q", i+1, wait, state, reason, st.wait, st.state, st.reason)
				}
			}
		})
	}
}

func TestReconnectPolicy_Caps(t *testing.T) {
	p := newPolicy(90 * time.Second)
	var last [3]time.Duration
	for range 100 {
		last[0], _, _ = p.next(End{Kind: EndNetwork, Err: io.ErrUnexpectedEOF})
		last[1], _, _ = p.next(End{Kind: EndHTTP, Status: 500})
		last[2], _, _ = p.next(End{Kind: EndHTTP, Status: 420})
	}
	if want := [3]time.Duration{16 * time.Second, 320 * time.Second, 16 * time.Minute}; last != want {
		t.Errorf("waits after 100 failures = %v, want %v", last, want)
	}
}

func TestWaitOrDone_EndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	never := func(time.Duration) <-chan time.Time { return nil }
	if waitOrDone(ctx, never, time.Hour) {
		t.Error("waitOrDone = true with an ended context, want false")
	}
	fired := func(time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	if !waitOrDone(context.Background(), fired, time.Hour) {
		t.Error("waitOrDone = false after the timer fired, want true")
	}
}
