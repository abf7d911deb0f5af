package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/twitter"
)

// ReplaySourceName is the name of the replay source, and the stream.Source of its messages.
const ReplaySourceName = "replay"

// ReplayConfig configures a ReplaySource.
type ReplayConfig struct {
	// Path is the file to replay: newline-delimited JSON (one stream line per line, as
	// statuses/filter sends them), a v1.1 search result ({"statuses":[...]}) or a JSON array of
	// tweets. The file is read once, at construction.
	Path string
	// Rate is the number of lines per second to replay. Zero or less replays as fast as the
	// worker takes them, which is what the throughput benchmark does.
	Rate float64
	// Loops is how many times the file is replayed; zero means until ctx ends.
	Loops int
}

// ReplaySource replays a file of tweets through the same decoder as the stream, so the service
// can run, be demonstrated and be benchmarked with real tweets and without any network.
type ReplaySource struct {
	lines [][]byte
	rate  float64
	loops int

	// now and sleep are the clock, replaceable by tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	status stream.SourceStatus
}

// NewReplaySource reads cfg.Path and returns a source that replays it.
func NewReplaySource(cfg ReplayConfig) (*ReplaySource, error) {
	if cfg.Path == "" {
		return nil, errors.New("replay: no file given")
	}
	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	lines, err := ReplayLines(data)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", cfg.Path, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("replay %s: no lines", cfg.Path)
	}
	if cfg.Loops < 0 {
		return nil, fmt.Errorf("replay: loops %d is negative", cfg.Loops)
	}
	return &ReplaySource{
		lines:  lines,
		rate:   cfg.Rate,
		loops:  cfg.Loops,
		now:    time.Now,
		sleep:  sleepCtx,
		status: stream.SourceStatus{Source: ReplaySourceName, State: stream.StateConnecting, Since: time.Now()},
	}, nil
}

// ReplayLines splits a replay file into stream lines: the statuses of {"statuses":[...]} or the
// elements of an array, each made one compact line, or else the non-blank lines of
// newline-delimited JSON, kept as they are (an invalid line is replayed and counted as skipped,
// as it would be on the stream).
func ReplayLines(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	var elems []json.RawMessage
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, fmt.Errorf("not a JSON array of tweets: %w", err)
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		var search struct {
			Statuses *[]json.RawMessage `json:"statuses"`
		}
		// A file of newline-delimited tweets fails to decode as one object, and a single tweet
		// has no statuses: both are replayed line by line.
		if json.Unmarshal(trimmed, &search) == nil && search.Statuses != nil {
			elems = *search.Statuses
			break
		}
		return splitNDJSON(data), nil
	default:
		return splitNDJSON(data), nil
	}
	lines := make([][]byte, 0, len(elems))
	for _, e := range elems {
		var b bytes.Buffer
		if err := json.Compact(&b, e); err != nil {
			return nil, err
		}
		lines = append(lines, b.Bytes())
	}
	return lines, nil
}

func splitNDJSON(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) > 0 { // blank lines are keep-alives, not records
			lines = append(lines, line)
		}
	}
	return lines
}

// Name returns "replay".
func (s *ReplaySource) Name() string { return ReplaySourceName }

// Status returns the source's state: connected while replaying, stopped when done.
func (s *ReplaySource) Status() stream.SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *ReplaySource) setState(state stream.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.State = state
	s.status.Since = s.now()
	if state == stream.StateConnected {
		s.status.Connects++
	}
}

// Run replays the lines, decoding each with DecodeLine, until ctx ends or, when Loops is set,
// until the last loop is done; both return nil. emit's back-pressure paces the replay: nothing
// is read ahead. With a Rate, line i is emitted no earlier than i/Rate seconds after the start,
// so a slow sink makes the replay fall behind rather than burst.
func (s *ReplaySource) Run(ctx context.Context, emit func(context.Context, stream.Record)) error {
	s.setState(stream.StateConnected)
	defer s.setState(stream.StateStopped)
	start := s.now()
	var sent int64
	for loop := 0; s.loops == 0 || loop < s.loops; loop++ {
		for _, line := range s.lines {
			if sent&63 == 0 && ctx.Err() != nil {
				return nil
			}
			if s.rate > 0 {
				due := start.Add(time.Duration(float64(sent) / s.rate * float64(time.Second)))
				// Sleeping only when more than a millisecond ahead keeps high rates from paying
				// a timer per line: they go out in small bursts, like the real stream's.
				if wait := due.Sub(s.now()); wait > time.Millisecond {
					if s.sleep(ctx, wait) != nil {
						return nil
					}
				}
			}
			emit(ctx, twitter.DecodeLine(line, ReplaySourceName))
			sent++
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
