package twittersim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// maxBurst bounds how many candidates one pacing tick produces. A client that reads slower than
// Rate falls behind; the backlog beyond this is dropped, as Twitter dropped what a slow client
// could not take.
const maxBurst = 1000

// injection is a line given to Send, with the answer whether the stream wrote it.
type injection struct {
	line []byte
	done chan bool
}

// conn is one open stream. Fields below ended are owned by the stream's goroutine.
type conn struct {
	id     int64
	rc     *http.ResponseController
	w      http.ResponseWriter
	inject chan *injection
	ended  chan struct{}

	gen       uint64 // the fault generation the message count below refers to
	sent      int    // messages since the connection opened or the faults changed
	stalled   bool
	tweets    int
	notices   int
	noticeSeq int
	limit     int64
	lastID    int64
	lastUID   int64
}

type messageKind int

const (
	kindTweet messageKind = iota
	kindNotice
)

// connGrace bounds how long a new stream waits for the handlers of earlier streams to end
// before it is counted; see serveStream.
const connGrace = 500 * time.Millisecond

// serveStream holds the stream open until the client leaves, the server closes or a fault ends
// it. Everything is written from this goroutine.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, m *stream.Matcher, ph [][]string) {
	c := &conn{
		rc:     http.NewResponseController(w),
		w:      w,
		inject: make(chan *injection),
		ended:  make(chan struct{}),
	}
	// A client that closed its previous stream before opening this one can still find the old
	// handler running for a moment: the server learns of a close asynchronously. Wait briefly
	// for earlier streams to finish before counting this one, so that MaxConnections counts
	// only a client that really holds two streams (whose old stream outlives the grace).
	deadline := time.Now().Add(connGrace)
	s.mu.Lock()
	for s.stats.Connections > 0 && time.Now().Before(deadline) && r.Context().Err() == nil {
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		s.mu.Lock()
	}
	s.nextConn++
	c.id, c.gen = s.nextConn, s.faultGen
	s.conns[c] = struct{}{}
	s.stats.Connects++
	s.stats.Connections++
	s.stats.MaxConnections = max(s.stats.MaxConnections, s.stats.Connections)
	s.mu.Unlock()
	s.logger.Info("twittersim stream opened", "conn", c.id, "track_phrases", len(ph))
	defer func() {
		close(c.ended)
		s.mu.Lock()
		delete(s.conns, c)
		s.stats.Connections--
		s.mu.Unlock()
		s.logger.Info("twittersim stream closed", "conn", c.id, "messages", c.tweets, "notices", c.notices)
	}()

	// Twitter sent the headers at once, before any message: a client sees 200 even on a stream
	// that stays silent, which is what a stall looks like.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if c.rc.Flush() != nil {
		return
	}

	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	var tick <-chan time.Time
	if s.rate > 0 {
		period := max(time.Duration(float64(time.Second)/s.rate), time.Millisecond)
		t := time.NewTicker(period)
		defer t.Stop()
		tick = t.C
	}
	start, produced := time.Now(), 0

	s.idleFaults(c)
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case inj := <-c.inject:
			err := c.write(inj.line)
			if err == nil {
				s.count(func(st *Stats) { st.Injected++ })
			}
			inj.done <- err == nil
			if err != nil {
				return
			}
		case <-keepAlive.C:
			if s.idleFaults(c); c.stalled {
				continue
			}
			if c.write(nil) != nil {
				return
			}
			s.count(func(st *Stats) { st.KeepAlives++ })
		case <-tick:
			due := int(time.Since(start).Seconds()*s.rate+1e-9) - produced
			if s.idleFaults(c); c.stalled {
				produced += due // a stalled stream does not catch up later
				continue
			}
			if due > maxBurst {
				produced += due - maxBurst
				due = maxBurst
			}
			for range due {
				produced++
				if s.produce(c, m, ph) != nil {
					return
				}
			}
		}
	}
}

// idleFaults applies the faults that do not need a message to act on: a stall that is due,
// and a clean disconnect that is due.
func (s *Server) idleFaults(c *conn) {
	f := s.faultsFor(c)
	if !c.stalled && f.Stall && c.sent >= f.StallAfter {
		s.stall(c)
	}
	if !c.stalled && f.Disconnect && !f.MidLine && c.sent >= f.DisconnectAfter {
		s.abort(c)
	}
}

// faultsFor returns the armed faults and restarts the connection's message count when they
// changed since it last looked.
func (s *Server) faultsFor(c *conn) Faults {
	s.mu.Lock()
	f, gen := s.faults, s.faultGen
	s.mu.Unlock()
	if gen != c.gen {
		c.gen, c.sent = gen, 0
	}
	return f
}

func (s *Server) stall(c *conn) {
	c.stalled = true
	s.count(func(st *Stats) { st.Stalls++ })
	s.logger.Info("twittersim stream stalled", "conn", c.id, "after_messages", c.sent)
}

// abort drops the connection without the terminating chunk, so the client sees an unexpected
// EOF as after a network failure. http.ErrAbortHandler is the net/http way to do that; the
// deferred clean-up of serveStream still runs.
func (s *Server) abort(c *conn) {
	s.count(func(st *Stats) { st.Disconnects++ })
	s.logger.Info("twittersim stream dropped", "conn", c.id, "after_messages", c.sent)
	panic(http.ErrAbortHandler)
}

// produce takes the next candidate off the firehose and writes it if it matches track, then a
// notice if one is due.
func (s *Server) produce(c *conn, m *stream.Matcher, ph [][]string) error {
	line, msg, id, uid, ok := s.nextCandidate(ph)
	if !ok {
		return nil
	}
	if msg == nil {
		return s.writeMessage(c, line, kindNotice)
	}
	if len(m.Match(msg)) == 0 {
		return nil
	}
	if err := s.writeMessage(c, line, kindTweet); err != nil {
		return err
	}
	c.lastID, c.lastUID = id, uid
	if s.notice > 0 && c.tweets%s.notice == 0 && !c.stalled {
		return s.writeMessage(c, s.noticeLine(c), kindNotice)
	}
	return nil
}

// nextCandidate returns the next message of the shared timeline: a synthetic tweet, or the
// corpus's next line. msg is nil for a corpus line that is not a tweet. ok is false when the
// corpus is exhausted and does not loop.
func (s *Server) nextCandidate(ph [][]string) (line []byte, msg *stream.Message, id, uid int64, ok bool) {
	s.mu.Lock()
	if s.corpus != nil {
		defer s.mu.Unlock()
		if s.cursor >= len(s.corpus) {
			if !s.loop {
				return nil, nil, 0, 0, false
			}
			s.cursor = 0
		}
		item := s.corpus[s.cursor]
		s.cursor++
		return item.line, item.msg, item.id, item.userID, true
	}
	t := s.gen.next(ph)
	s.mu.Unlock()
	return marshalLine(t), t.toMessage(), t.ID, t.User.ID, true
}

// noticeLine makes the next notice: delete notices (of the tweet sent last) and limit notices
// alternate. A limit notice's count is cumulative over the connection, as Twitter's was.
func (s *Server) noticeLine(c *conn) []byte {
	s.mu.Lock()
	missed := 1 + int64(s.gen.rng.IntN(50))
	s.mu.Unlock()
	ts := strconv.FormatInt(s.gen.now().UnixMilli(), 10)
	c.noticeSeq++
	if c.noticeSeq%2 == 1 {
		type status struct {
			ID        int64  `json:"id"`
			IDStr     string `json:"id_str"`
			UserID    int64  `json:"user_id"`
			UserIDStr string `json:"user_id_str"`
		}
		var n struct {
			Delete struct {
				Status      status `json:"status"`
				TimestampMs string `json:"timestamp_ms"`
			} `json:"delete"`
		}
		n.Delete.Status = status{c.lastID, strconv.FormatInt(c.lastID, 10), c.lastUID, strconv.FormatInt(c.lastUID, 10)}
		n.Delete.TimestampMs = ts
		return marshalLine(n)
	}
	c.limit += missed
	var n struct {
		Limit struct {
			Track       int64  `json:"track"`
			TimestampMs string `json:"timestamp_ms"`
		} `json:"limit"`
	}
	n.Limit.Track, n.Limit.TimestampMs = c.limit, ts
	return marshalLine(n)
}

// marshalLine encodes v on one line without HTML escaping: Twitter sent "<a href=...>" in
// source as is.
func marshalLine(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the simulator's own structs are encoded here; they always encode.
		panic("twittersim: encode message: " + err.Error())
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// writeMessage writes one tweet or notice, applying the message-counting faults first.
func (s *Server) writeMessage(c *conn, line []byte, kind messageKind) error {
	f := s.faultsFor(c)
	if c.stalled {
		return nil
	}
	if f.Stall && c.sent >= f.StallAfter {
		s.stall(c)
		return nil
	}
	if f.Disconnect && c.sent >= f.DisconnectAfter {
		if f.MidLine {
			// Half a line, flushed, then the drop: the client holds a torn message.
			_, _ = c.w.Write(line[:len(line)/2])
			_ = c.rc.Flush()
		}
		s.abort(c)
	}
	if err := c.write(line); err != nil {
		return err
	}
	c.sent++
	if kind == kindTweet {
		c.tweets++
	} else {
		c.notices++
	}
	s.count(func(st *Stats) {
		if kind == kindTweet {
			st.Messages++
		} else {
			st.Notices++
		}
	})
	return nil
}

// write writes line and the "\r\n" delimiter in one chunk and flushes it; a nil line is a
// keep-alive.
func (c *conn) write(line []byte) error {
	buf := make([]byte, 0, len(line)+2)
	buf = append(append(buf, line...), '\r', '\n')
	if _, err := c.w.Write(buf); err != nil {
		return err
	}
	return c.rc.Flush()
}
