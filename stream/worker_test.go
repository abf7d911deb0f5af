package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
)

// recordsSource emits a fixed list of records, then returns.
type recordsSource struct{ records []Record }

func (s *recordsSource) Name() string         { return "records" }
func (s *recordsSource) Status() SourceStatus { return SourceStatus{Source: "records"} }
func (s *recordsSource) Run(ctx context.Context, emit func(context.Context, Record)) error {
	for _, r := range s.records {
		emit(ctx, r)
	}
	return nil
}

// collectSink keeps what it is given, or refuses everything when err is set.
type collectSink struct {
	got []Match
	err error
}

func (s *collectSink) Write(_ context.Context, m Match) error {
	if s.err != nil {
		return s.err
	}
	s.got = append(s.got, m)
	return nil
}

func tweet(id, text string) Record {
	return Record{Kind: KindMessage, Message: Message{ID: id, User: "u", Text: text}}
}

func TestWorker_CountsEveryRecordOnce(t *testing.T) {
	src := &recordsSource{records: []Record{
		tweet("1", "fargate is here"),
		tweet("2", "nothing to see"),
		{Kind: KindNotice, Notice: "delete"},
		{Kind: KindNotice, Notice: "limit", LimitMissed: 42},
		{Kind: KindSkipped, Reason: "invalid_json"},
		{Kind: KindSkipped},
		tweet("3", "#Fargate again"),
	}}
	m, err := NewMatcher([]string{"fargate"})
	if err != nil {
		t.Fatal(err)
	}
	sink := &collectSink{}
	w := NewWorker(src, m, sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := w.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := w.Counters()
	want := Counters{Received: 7, Matched: 2, Unmatched: 1, Skipped: 4, LimitMissed: 42}
	if c.Received != want.Received || c.Matched != want.Matched || c.Unmatched != want.Unmatched || c.Skipped != want.Skipped || c.LimitMissed != want.LimitMissed {
		t.Errorf("counters: got %+v, want %+v", c, want)
	}
	if c.Received != c.Matched+c.Unmatched+c.Skipped {
		t.Errorf("received %d != matched + unmatched + skipped (%d)", c.Received, c.Matched+c.Unmatched+c.Skipped)
	}
	for reason, n := range map[string]uint64{"notice_delete": 1, "notice_limit": 1, "invalid_json": 1, "unknown": 1} {
		if c.SkippedByReason[reason] != n {
			t.Errorf("skipped_by_reason[%s]: got %d, want %d (all: %v)", reason, c.SkippedByReason[reason], n, c.SkippedByReason)
		}
	}
	if len(sink.got) != 2 || sink.got[0].Terms[0] != "fargate" {
		t.Errorf("sink got %+v, want the two matches with their term", sink.got)
	}
}

func TestWorker_RefusedHandoffIsCountedAsFailed(t *testing.T) {
	src := &recordsSource{records: []Record{tweet("1", "fargate")}}
	m, _ := NewMatcher([]string{"fargate"})
	w := NewWorker(src, m, &collectSink{err: errors.New("writer stopped")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_ = w.Run(context.Background())
	if c := w.Counters(); c.Matched != 1 || c.HandoffFailed != 1 {
		t.Errorf("got matched %d handoff_failed %d, want 1 and 1", c.Matched, c.HandoffFailed)
	}
}

func TestWorker_RecentIsNewestFirstAndBounded(t *testing.T) {
	var recs []Record
	for i := range recentSize + 5 {
		recs = append(recs, tweet(fmt.Sprint(i), "fargate"))
	}
	m, _ := NewMatcher([]string{"fargate"})
	w := NewWorker(&recordsSource{records: recs}, m, &collectSink{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got := w.Recent(10); len(got) != 0 {
		t.Errorf("before any match: got %d, want 0", len(got))
	}
	_ = w.Run(context.Background())
	got := w.Recent(1000)
	if len(got) != recentSize {
		t.Fatalf("Recent(1000): got %d, want %d", len(got), recentSize)
	}
	if first, last := got[0].Message.ID, got[len(got)-1].Message.ID; first != fmt.Sprint(recentSize+4) || last != "5" {
		t.Errorf("order: got first %s last %s, want %d and 5", first, last, recentSize+4)
	}
	if got := w.Recent(3); len(got) != 3 || got[0].Message.ID != fmt.Sprint(recentSize+4) {
		t.Errorf("Recent(3): got %d items starting %v", len(got), got)
	}
}
