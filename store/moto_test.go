package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/stream"
)

// These tests write to moto_server, a real DynamoDB wire-protocol peer, with the blog's table.

func TestWriter_WritesItemsWithBlogSchemaAndUTF8(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	ingested := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	created := time.Date(2013, 8, 3, 12, 30, 45, 999_000_000, time.FixedZone("JST", 9*3600))
	tests := []struct {
		name string
		text string
	}{
		{"japanese", "東京で花火大会🎆 #夏祭り @友達 今日は楽しかった！"},
		{"emoji with joiners and skin tones", "launch day 🚀🔥 👩🏽‍💻👨‍👩‍👧‍👦 🇯🇵"},
		{"combining accents", "touché vs touche\u0301"},
		{"arabic right to left", "مرحبا بالعالم"},
		{"quotes and markup", `<script>alert("x")</script> & 'quotes' \ backslash`},
	}
	w := NewWriter(client, Config{Table: blogTable}, discard())
	w.now = fixedClock(ingested)
	for i, tt := range tests {
		m := match("nihongo_user", "36370000000000"+string(rune('0'+i)), created, tt.text, "花火", "launch", "花火")
		if err := w.Write(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	stop := running(t, w)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := match("nihongo_user", "36370000000000"+string(rune('0'+i)), created, tt.text)
			item := getItem(t, client, m.Message)
			if got := str(item, "text"); got != tt.text {
				t.Errorf("text: got %q (% x), want %q (% x)", got, got, tt.text, tt.text)
			}
			wantDate := "2013-08-03T03:30:45Z#" + m.Message.ID
			checks := []struct{ attr, got, want string }{
				{"user", str(item, "user"), "nihongo_user"},
				{"date", str(item, "date"), wantDate},
				{"id", str(item, "id"), m.Message.ID},
				{"source", str(item, "source"), "replay"},
				{"lang", str(item, "lang"), "en"},
				{"ingested_at", str(item, "ingested_at"), "2026-01-02T03:04:05Z"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.attr, c.got, c.want)
				}
			}
			ss, ok := item["matched"].(*types.AttributeValueMemberSS)
			if !ok {
				t.Fatalf("matched: got %T, want a string set", item["matched"])
			}
			got := slices.Sorted(slices.Values(ss.Value))
			if want := []string{"launch", "花火"}; !slices.Equal(got, want) {
				t.Errorf("matched: got %q, want %q", got, want)
			}
			if len(item) != 8 {
				t.Errorf("attributes: got %d (%v), want 8: no raw tweet or extras", len(item), keys(item))
			}
		})
	}
}

func TestWriter_SameSecondSameUserDoNotOverwrite(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	second := time.Date(2013, 8, 3, 12, 0, 0, 0, time.UTC)
	// Three tweets of one user within one second, the second one sent first.
	ms := []stream.Match{
		match("fast_typist", "363700000000000002", second.Add(600*time.Millisecond), "second"),
		match("fast_typist", "363700000000000001", second.Add(100*time.Millisecond), "first"),
		match("fast_typist", "363700000000000003", second.Add(900*time.Millisecond), "third"),
	}
	w := NewWriter(client, Config{Table: blogTable}, discard())
	writeAll(t, w, ms)
	if err := running(t, w)(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	out, err := client.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(blogTable),
		KeyConditionExpression:    aws.String("#u = :u"),
		ExpressionAttributeNames:  map[string]string{"#u": "user"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": &types.AttributeValueMemberS{Value: "fast_typist"}},
	})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	var got []string
	for _, item := range out.Items {
		got = append(got, str(item, "text"))
	}
	// The key sorts by time and then by id, so the query returns them in tweet order.
	if want := []string{"first", "second", "third"}; !slices.Equal(got, want) {
		t.Errorf("items of fast_typist: got %q, want %q", got, want)
	}
}

func TestWriter_RewriteIsIdempotent(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	ms := matches(30)
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// A task writes the matches, is replaced, and its successor writes them again.
	for run, now := range []time.Time{first, first.Add(time.Hour)} {
		w := NewWriter(client, Config{Table: blogTable}, discard())
		w.now = fixedClock(now)
		writeAll(t, w, ms)
		if err := running(t, w)(); err != nil {
			t.Fatalf("run %d: Run: %v", run, err)
		}
		if s := w.Stats(); s.Written != 30 || s.Failed != 0 {
			t.Fatalf("run %d: got written %d failed %d, want 30 and 0", run, s.Written, s.Failed)
		}
	}

	if got := countItems(t, client); got != 30 {
		t.Errorf("items after writing 30 matches twice: got %d, want 30", got)
	}
	item := getItem(t, client, ms[0].Message)
	if got, want := str(item, "ingested_at"), "2026-01-01T01:00:00Z"; got != want {
		t.Errorf("ingested_at: got %s, want the second write's %s", got, want)
	}
}

func TestWriter_FlushesAt25(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	// The interval never fires in this test: only a full batch can trigger the write.
	w := NewWriter(client, Config{Table: blogTable, FlushInterval: time.Hour}, discard())
	running(t, w)
	writeAll(t, w, matches(30))

	waitFor(t, "25 items written", func() bool { return w.Stats().Written == 25 })
	s := w.Stats()
	if s.Requests != 1 || s.Queued != 5 {
		t.Errorf("after one full batch: got requests %d, queued %d; want 1 and 5", s.Requests, s.Queued)
	}
	if got := countItems(t, client); got != 25 {
		t.Errorf("items in table: got %d, want 25", got)
	}
}

func TestWriter_FlushesAfterInterval(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	w := NewWriter(client, Config{Table: blogTable, FlushInterval: 20 * time.Millisecond}, discard())
	running(t, w)
	ms := matches(3)
	writeAll(t, w, ms)

	// Three items never fill a batch, and Run is still running: only the interval writes them.
	waitFor(t, "3 items written", func() bool { return w.Stats().Written == 3 })
	for _, m := range ms {
		getItem(t, client, m.Message)
	}
}

func TestWriter_DrainsQueueOnShutdown(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	w := NewWriter(client, Config{Table: blogTable, FlushInterval: time.Hour}, discard())
	stop := running(t, w)
	writeAll(t, w, matches(60)) // two full batches and ten that wait for the interval

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := w.Stats()
	if s.Written != 60 || s.Failed != 0 || s.Queued != 0 {
		t.Errorf("after shutdown: got written %d, failed %d, queued %d; want 60, 0, 0", s.Written, s.Failed, s.Queued)
	}
	if got := countItems(t, client); got != 60 {
		t.Errorf("items in table: got %d, want 60", got)
	}
	if err := w.Write(context.Background(), matches(1)[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after shutdown: got %v, want ErrClosed", err)
	}
	if got := w.Stats().Accepted; got != 60 {
		t.Errorf("accepted after a refused write: got %d, want 60", got)
	}
}

func TestWriter_BackPressureWhenQueueFull(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	w := NewWriter(client, Config{Table: blogTable, QueueSize: 5, FlushInterval: 10 * time.Millisecond}, discard())
	ms := matches(7)
	writeAll(t, w, ms[:5]) // Run is not started: nothing drains the queue

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Write(ctx, ms[5]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write into a full queue: got %v, want context.DeadlineExceeded", err)
	}
	if s := w.Stats(); s.Accepted != 5 || s.Queued != 5 {
		t.Fatalf("after a refused write: got accepted %d, queued %d; want 5 and 5", s.Accepted, s.Queued)
	}

	blocked := make(chan error, 1)
	go func() { blocked <- w.Write(context.Background(), ms[6]) }()
	running(t, w) // draining the queue lets the blocked Write in
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatalf("blocked Write: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Write stayed blocked after the queue drained")
	}
	waitFor(t, "6 items written", func() bool { return w.Stats().Written == 6 })
}

func TestWriter_IsolatesInvalidItemOnMoto(t *testing.T) {
	t.Parallel()
	client := newMotoTable(t)
	ms := matches(5)
	ms[2].Message.User = "" // an empty key attribute: DynamoDB rejects the whole batch
	w := NewWriter(client, Config{Table: blogTable}, discard())
	writeAll(t, w, ms)
	if err := running(t, w)(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := w.Stats()
	if s.Written != 4 || s.FailedByReason[ReasonInvalidItem] != 1 || s.Failed != 1 {
		t.Errorf("got written %d, failed %v; want 4 written and 1 invalid_item", s.Written, s.FailedByReason)
	}
	if got := countItems(t, client); got != 4 {
		t.Errorf("items in table: got %d, want 4", got)
	}
}

func BenchmarkWriter_Moto(b *testing.B) {
	client := newMotoTable(b)
	ms := matches(b.N)
	w := NewWriter(client, Config{Table: blogTable, QueueSize: 10_000}, discard())
	b.ResetTimer()
	start := time.Now()
	stop := running(b, w)
	writeAll(b, w, ms)
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	s := w.Stats()
	if s.Written != uint64(b.N) {
		b.Fatalf("written %d of %d (failed %v)", s.Written, b.N, s.FailedByReason)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
	b.ReportMetric(float64(s.Requests)/float64(b.N), "requests/item")
}

func keys(item map[string]types.AttributeValue) []string {
	var out []string
	for k := range item {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
