// Package bench holds streammatch's end-to-end benchmarks and the helpers bench/run.sh uses;
// nothing here is part of the service. See bench/RESULTS.md.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode"

	gotwitter "github.com/dghubble/go-twitter/twitter"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/twitter"
)

// BenchmarkPipeline replays the real tweets of ../shared/testdata/twitter.json in a loop through
// decode -> match (400 terms) -> batch (25-item slices, as BatchWriteItem takes them) into a
// counting sink, through the service's own stream.Worker. One op is one pass over the file's 100
// tweets. Run it with -cpu 1 for the one-core figure. Besides ns/op and MB/s it reports
// tweets/s and cpu-us/tweet, the process CPU time per tweet from getrusage, which is what the
// CPU cost (and Fargate vCPU-hours) follow from and which another process's load on the
// machine does not inflate the way it inflates wall time.
//
// The decoder variants are the baselines, run side by side in the same loop: go-twitter's path
// (a map to find the message type, then a full gotwitter.Tweet), encoding/json into a full
// gotwitter.Tweet, and no decoder but a bytes.IndexByte scan for the newline, the memory-speed
// ceiling of anything that reads every byte.
func BenchmarkPipeline(b *testing.B) {
	lines := corpusLines(b)
	var ndjson []byte
	for _, l := range lines {
		ndjson = append(append(ndjson, l...), '\n')
	}
	path := filepath.Join(b.TempDir(), "tweets.ndjson")
	if err := os.WriteFile(path, ndjson, 0o600); err != nil {
		b.Fatal(err)
	}
	terms := pipelineTerms(lines, 400)
	matcher, err := stream.NewMatcher(terms)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)

	run := func(b *testing.B, src stream.Source, sink *batchSink) {
		b.SetBytes(int64(len(ndjson)))
		b.ReportAllocs()
		w := stream.NewWorker(src, matcher, sink, logger)
		cpu0 := processCPU()
		b.ResetTimer()
		if err := w.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu := processCPU() - cpu0
		tweets := float64(len(lines)) * float64(b.N)
		b.ReportMetric(tweets/b.Elapsed().Seconds(), "tweets/s")
		b.ReportMetric(cpu.Seconds()*1e6/tweets, "cpu-us/tweet")
		c := w.Counters()
		if c.Received != uint64(tweets) || c.Matched != sink.items.Load() {
			b.Fatalf("received %d, want %d; matched %d, sink got %d", c.Received, uint64(tweets), c.Matched, sink.items.Load())
		}
		b.ReportMetric(float64(c.Matched)/tweets, "matched-frac")
	}

	b.Run("decoder=selective", func(b *testing.B) {
		src, err := NewReplaySource(ReplayConfig{Path: path, Loops: b.N})
		if err != nil {
			b.Fatal(err)
		}
		run(b, src, &batchSink{})
	})
	b.Run("decoder=gotwitter", func(b *testing.B) {
		run(b, &loopSource{lines: lines, loops: b.N, decode: goTwitterDecode}, &batchSink{})
	})
	b.Run("decoder=encodingjson-fullstruct", func(b *testing.B) {
		run(b, &loopSource{lines: lines, loops: b.N, decode: fullStructDecode}, &batchSink{})
	})
	b.Run("ceiling=indexbyte-newlines", func(b *testing.B) {
		b.SetBytes(int64(len(ndjson)))
		n := 0
		for b.Loop() {
			for rest := ndjson; ; {
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					break
				}
				n++
				rest = rest[i+1:]
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tweets/s")
	})
}

// batchSink groups matches into slices of 25, as store.Writer does for BatchWriteItem, and
// counts them instead of writing.
type batchSink struct {
	batch   []stream.Match
	batches int
	items   atomic.Uint64
}

func (s *batchSink) Write(_ context.Context, m stream.Match) error {
	if s.batch == nil {
		s.batch = make([]stream.Match, 0, 25)
	}
	s.batch = append(s.batch, m)
	if len(s.batch) == cap(s.batch) {
		s.batches++
		clear(s.batch)
		s.batch = s.batch[:0]
	}
	s.items.Add(1)
	return nil
}

// loopSource is the replay loop with another decoder, for the baselines.
type loopSource struct {
	lines  [][]byte
	loops  int
	decode func([]byte) stream.Record
}

func (s *loopSource) Name() string                { return "baseline" }
func (s *loopSource) Status() stream.SourceStatus { return stream.SourceStatus{} }
func (s *loopSource) Run(ctx context.Context, emit func(context.Context, stream.Record)) error {
	for range s.loops {
		for _, l := range s.lines {
			emit(ctx, s.decode(l))
		}
	}
	return nil
}

// goTwitterDecode is what go-twitter does with each line (its getMessage): decode into a map to
// find the type, then decode again into a gotwitter.Tweet, ignoring type errors.
func goTwitterDecode(l []byte) stream.Record {
	var data map[string]any
	if json.Unmarshal(l, &data) != nil {
		return stream.Record{Kind: stream.KindSkipped, Reason: "invalid_json"}
	}
	if _, ok := data["retweet_count"]; !ok {
		return stream.Record{Kind: stream.KindNotice, Notice: "other"}
	}
	tw := new(gotwitter.Tweet)
	_ = json.Unmarshal(l, tw)
	return tweetRecord(tw)
}

// fullStructDecode is encoding/json into the full gotwitter.Tweet struct, once.
func fullStructDecode(l []byte) stream.Record {
	tw := new(gotwitter.Tweet)
	if err := json.Unmarshal(l, tw); err != nil {
		return stream.Record{Kind: stream.KindSkipped, Reason: "invalid_json"}
	}
	return tweetRecord(tw)
}

// tweetRecord makes the baseline's Message from go-twitter's struct: the text (the full text of
// an extended tweet) and the entities the matcher reads, without the checks DecodeLine makes.
func tweetRecord(tw *gotwitter.Tweet) stream.Record {
	if tw.User == nil {
		return stream.Record{Kind: stream.KindSkipped, Reason: stream.ReasonMissingUser}
	}
	m := stream.Message{ID: tw.IDStr, User: tw.User.ScreenName, Text: tw.Text, Lang: tw.Lang, Source: "baseline"}
	if tw.ExtendedTweet != nil {
		m.Text = tw.ExtendedTweet.FullText
	}
	if e := tw.Entities; e != nil {
		for _, h := range e.Hashtags {
			m.Hashtags = stream.AppendEntity(m.Hashtags, h.Text)
		}
		for _, u := range e.UserMentions {
			m.Mentions = stream.AppendEntity(m.Mentions, u.ScreenName)
		}
		for _, u := range e.Urls {
			m.URLs = stream.AppendEntity(m.URLs, u.ExpandedURL)
		}
	}
	return stream.Record{Kind: stream.KindMessage, Message: m}
}

// processCPU is the user plus system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// corpusLines returns the statuses of ../shared/testdata/twitter.json (beside the repository)
// as compact stream lines, skipping the benchmark when the file is absent.
func corpusLines(tb testing.TB) [][]byte {
	tb.Helper()
	path, err := corpusPath()
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skip("../shared/testdata/twitter.json is absent")
	}
	if err != nil {
		tb.Fatal(err)
	}
	lines, err := ReplayLines(data)
	if err != nil {
		tb.Fatal(err)
	}
	return lines
}

// corpusPath finds ../shared/testdata/twitter.json relative to the directory holding go.mod.
func corpusPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "testdata", "twitter.json"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// pipelineTerms returns n track phrases: 8 words taken from the corpus (so a few per cent of
// the tweets match, as in the matcher benchmarks) and the rest random words, a third of them
// paired with a corpus word. The same every run.
func pipelineTerms(lines [][]byte, n int) []string {
	vocab := map[string]bool{}
	for _, l := range lines {
		rec := twitter.DecodeLine(l, "terms")
		for _, tok := range strings.Fields(strings.ToLower(rec.Message.Text)) {
			tok = strings.TrimFunc(tok, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
			if len(tok) >= 2 && len(tok) <= 28 {
				vocab[tok] = true
			}
		}
	}
	words := make([]string, 0, len(vocab))
	for w := range vocab {
		words = append(words, w)
	}
	slices.Sort(words)
	r := rand.New(rand.NewPCG(143199, uint64(n)))
	seen := map[string]bool{}
	var terms []string
	for len(terms) < n {
		var t string
		switch {
		case len(terms) < 8:
			t = words[r.IntN(len(words))]
		case r.IntN(3) == 0:
			t = fmt.Sprintf("%s %s", randomWord(r), words[r.IntN(len(words))])
		default:
			t = randomWord(r)
		}
		if len(t) <= stream.MaxTrackTermBytes && !seen[t] {
			seen[t] = true
			terms = append(terms, t)
		}
	}
	return terms
}

func randomWord(r *rand.Rand) string {
	b := make([]byte, 4+r.IntN(7))
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}
