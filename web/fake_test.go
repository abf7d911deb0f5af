package web

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/stream"
)

// fakeStatus is a Status with a fixed report and match list. It records the limits asked for.
type fakeStatus struct {
	mu      sync.Mutex
	report  Report
	matches []MatchView
	limits  []int
	panics  bool
}

func (f *fakeStatus) Report() Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics {
		panic("fake status exploded")
	}
	return f.report
}

func (f *fakeStatus) RecentMatches(limit int) []MatchView {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, limit)
	if limit > len(f.matches) {
		limit = len(f.matches)
	}
	return f.matches[:limit]
}

func (f *fakeStatus) lastLimit() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.limits) == 0 {
		return 0
	}
	return f.limits[len(f.limits)-1]
}

// newTestServer builds a server over status that logs at debug into the returned buffer.
func newTestServer(t *testing.T, status Status) (*Server, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewServer(Config{Addr: "127.0.0.1:0", Logger: logger}, status)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return s, logs
}

// sampleStatus is a realistic, busy process: a connected stream, counters, secrets (one still
// being fingerprinted) and a handful of matches.
func sampleStatus() *fakeStatus {
	base := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	matches := []MatchView{
		{ID: "1234567890123456789", User: "gopherconf", Lang: "en", Source: "twitter", CreatedAt: base,
			Text:  "Early-bird tickets for #GopherCon are live! Talks on the Go scheduler, generics in practice and the new GC. https://t.co/abc123",
			Terms: []string{"gophercon"}},
		{ID: "1234567890123456700", User: "aws_news", Lang: "en", Source: "twitter", CreatedAt: base.Add(-42 * time.Second),
			Text:  "Amazon ECS on AWS Fargate now supports larger ephemeral storage.\nRead more on the blog.",
			Terms: []string{"fargate", "aws ecs"}},
		{ID: "1234567890123456600", User: "touché_fan", Lang: "fr", Source: "replay", CreatedAt: base.Add(-3 * time.Minute),
			Text:  "Touché ! Le streaming en Go, c'est vraiment agréable.",
			Terms: []string{"go streaming"}},
	}
	return &fakeStatus{
		report: Report{
			Version:       "v1.4.2 (3f9c2ab)",
			UptimeSeconds: 3*86400 + 4*3600 + 5*60 + 9,
			Health:        Health{Status: HealthOK},
			Stream: stream.SourceStatus{
				Source:   "twitter",
				State:    stream.StateConnected,
				Since:    base.Add(-2 * time.Hour),
				Connects: 3,
			},
			Counters: Counters{
				Received: 1048576, Matched: 2311, Unmatched: 1046160, Written: 2290, Failed: 4, Skipped: 105,
				SkippedByReason: map[string]uint64{"invalid_json": 3, "no_text": 102},
				FailedByReason:  map[string]uint64{"throttled": 4},
				Notices:         map[string]uint64{"delete": 812, "limit": 7},
				LimitMissed:     1520,
			},
			QueueDepth: 17,
			Secrets: []SecretInfo{
				{Name: "CONSUMERKEY", Set: true, Fingerprint: "fp3:c5f2cc364dab864b",
					Source: "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::",
					State:  SecretRotated, Detail: "the AWSCURRENT version was created after this task started: restart the task to pick it up",
					RotatedAt: base.Add(-10 * time.Minute), TaskStartedAt: base.Add(-2 * time.Hour), CheckedAt: base.Add(-time.Minute)},
				{Name: "CONSUMERSECRET", Set: true, Fingerprint: "fp3:0a5c9e7712f3b4d1",
					Source: "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERSECRET::",
					State:  SecretCurrent, Detail: "the AWSCURRENT version was created before this task started",
					TaskStartedAt: base.Add(-2 * time.Hour), CheckedAt: base.Add(-time.Minute)},
				{Name: "ACCESSTOKEN", Set: true, Fingerprint: "", Source: "/streammatch/ACCESSTOKEN",
					State: SecretUnknown, Detail: "drift is not checked for SSM parameters: ssm:DescribeParameters cannot be limited to one parameter"},
				{Name: "ACCESSSECRET", Set: false, State: SecretUnknown},
			},
			FingerprintFormat: "fp3",
			Track:             []string{"gophercon", "fargate", "aws ecs", "go streaming"},
			Table:             "twitterStream",
			Region:            "eu-west-1",
		},
		matches: matches,
	}
}
