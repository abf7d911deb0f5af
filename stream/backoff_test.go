package stream

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestReconnectPolicy(t *testing.T) {
	ms := time.Millisecond
	s := time.Second
	reset := errors.New("read: connection reset by peer")
	type step struct {
		end    connEnd
		wait   time.Duration
		state  State
		reason string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "network errors: +250ms a try, up to 16s", steps: []step{
			{connEnd{kind: endNetwork, err: reset}, 250 * ms, StateBackoff, "network error: read: connection reset by peer"},
			{connEnd{kind: endNetwork, err: reset}, 500 * ms, StateBackoff, "network error: read: connection reset by peer"},
			{connEnd{kind: endNetwork, err: reset}, 750 * ms, StateBackoff, "network error: read: connection reset by peer"},
		}},
		{name: "no headers within the stall timeout is a network-class stall", steps: []step{
			{connEnd{kind: endNetwork, stalled: true}, 250 * ms, StateStalled, "stalled: no response for 90s"},
		}},
		{name: "HTTP errors: 5s doubling to 320s", steps: []step{
			{connEnd{kind: endHTTP, status: 500}, 5 * s, StateBackoff, "http error (500)"},
			{connEnd{kind: endHTTP, status: 502}, 10 * s, StateBackoff, "http error (502)"},
			{connEnd{kind: endHTTP, status: 503}, 20 * s, StateBackoff, "service unavailable (503)"},
		}},
		{name: "401 and 403 are rejected, on the HTTP schedule", steps: []step{
			{connEnd{kind: endHTTP, status: 401}, 5 * s, StateRejected, "credentials rejected (401)"},
			{connEnd{kind: endHTTP, status: 403}, 10 * s, StateRejected, "forbidden (403)"},
		}},
		{name: "420 and 429: from one minute", steps: []step{
			{connEnd{kind: endHTTP, status: 420}, 60 * s, StateBackoff, "rate limited (420)"},
			{connEnd{kind: endHTTP, status: 429}, 120 * s, StateBackoff, "rate limited (429)"},
		}},
		{name: "a dropped connection that delivered data: at once, every time", steps: []step{
			{connEnd{kind: endDropped, lines: 3}, 0, StateBackoff, "connection closed by server"},
			{connEnd{kind: endDropped, lines: 1, err: reset}, 0, StateBackoff, "connection lost: read: connection reset by peer"},
			{connEnd{kind: endDropped, lines: 2}, 0, StateBackoff, "connection closed by server"},
		}},
		{name: "connections that deliver nothing slow down linearly", steps: []step{
			{connEnd{kind: endDropped}, 0, StateBackoff, "connection closed before any data"},
			{connEnd{kind: endDropped}, 250 * ms, StateBackoff, "connection closed before any data"},
			{connEnd{kind: endDropped}, 500 * ms, StateBackoff, "connection closed before any data"},
		}},
		{name: "stalls take the network schedule", steps: []step{
			{connEnd{kind: endDropped, lines: 1, stalled: true}, 250 * ms, StateStalled, "stalled: no data for 90s"},
			{connEnd{kind: endDropped, stalled: true}, 500 * ms, StateStalled, "stalled: no data for 90s"},
			{connEnd{kind: endNetwork, stalled: true}, 750 * ms, StateStalled, "stalled: no response for 90s"},
			{connEnd{kind: endDropped, lines: 1, stalled: true}, 250 * ms, StateStalled, "stalled: no data for 90s"},
		}},
		{name: "a connection resets every schedule", steps: []step{
			{connEnd{kind: endHTTP, status: 503}, 5 * s, StateBackoff, "service unavailable (503)"},
			{connEnd{kind: endHTTP, status: 429}, 60 * s, StateBackoff, "rate limited (429)"},
			{connEnd{kind: endNetwork, err: reset}, 250 * ms, StateBackoff, "network error: read: connection reset by peer"},
			{connEnd{kind: endDropped, lines: 1}, 0, StateBackoff, "connection closed by server"},
			{connEnd{kind: endHTTP, status: 503}, 5 * s, StateBackoff, "service unavailable (503)"},
			{connEnd{kind: endHTTP, status: 429}, 60 * s, StateBackoff, "rate limited (429)"},
			{connEnd{kind: endNetwork, err: reset}, 250 * ms, StateBackoff, "network error: read: connection reset by peer"},
		}},
		{name: "stop", steps: []step{{connEnd{kind: endStopped}, 0, StateStopped, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newReconnectPolicy(DefaultStallTimeout)
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
	p := newReconnectPolicy(DefaultStallTimeout)
	var last [3]time.Duration
	for range 100 {
		last[0], _, _ = p.next(connEnd{kind: endNetwork, err: io.ErrUnexpectedEOF})
		last[1], _, _ = p.next(connEnd{kind: endHTTP, status: 500})
		last[2], _, _ = p.next(connEnd{kind: endHTTP, status: 420})
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
