package conn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// NewTransport is the transport a stream's requests go through: HTTP/1.1 (a custom dialer turns
// off HTTP/2, whose multiplexing would hide a second stream inside one connection), no
// connection reuse (each stream is one long request, and an idle pooled connection would be a
// second connection held with the same credentials), a bounded dial and TLS handshake. There is
// deliberately no overall timeout: a stream lasts for days. Silence is caught by the stall
// watchdog instead, which also covers the wait for response headers, so ResponseHeaderTimeout
// is left to it.
func NewTransport(stallTimeout time.Duration) *http.Transport {
	dialTimeout := min(30*time.Second, stallTimeout)
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: min(10*time.Second, stallTimeout),
		DisableKeepAlives:   true,
	}
}

// watchdog cancels a connection when a read has waited longer than d. It is armed only while
// a read (or the wait for headers) is in progress: when the worker is slow and nothing is
// being read, the server is not silent, we are busy, and that must not count as a stall.
type watchdog struct {
	d     time.Duration
	timer *time.Timer
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	t := time.AfterFunc(time.Hour, fire)
	t.Stop()
	return &watchdog{d: d, timer: t}
}

func (w *watchdog) arm()    { w.timer.Reset(w.d) }
func (w *watchdog) disarm() { w.timer.Stop() }

// watchedReader arms the watchdog around every read, so every byte (a keep-alive newline too)
// restarts the stall timer.
type watchedReader struct {
	r   io.Reader
	dog *watchdog
}

func (w *watchedReader) Read(p []byte) (int, error) {
	w.dog.arm()
	n, err := w.r.Read(p)
	w.dog.disarm()
	return n, err
}

// DefaultMaxLine bounds one stream message. A v1.1 tweet is 2-7 KB, and a retweet of a quoted
// extended tweet with all its entities stays well under 100 KB; 512 KiB leaves a wide margin
// while capping what one hostile line can make the process hold.
const DefaultMaxLine = 512 << 10

// ReadBufferSize is the read buffer of the framers. A tweet is 2-7 KB, so most records arrive
// whole in one read.
const ReadBufferSize = 64 << 10

// LineReader frames a stream body whose messages end with "\r\n" (Twitter v1.1 and X v2). A lone
// "\n" can occur inside a message and does not end it. A blank line is a keep-alive and is
// swallowed. A line longer than max is discarded as it streams past, never held whole in memory;
// at the end of the body a started line is discarded. Each dropped line is reported once, so
// that every line on the wire is accounted for: returned, skipped with a reason, or a keep-alive.
type LineReader struct {
	src *bufio.Reader
	max int

	line   []byte // the line being assembled
	over   bool   // the current line passed max and is being discarded
	prevCR bool   // in discard mode: the last byte seen was '\r'
	err    error  // the body's error, returned once
}

// NewLineReader returns a LineReader over r for lines of at most max bytes (terminator excluded).
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{src: bufio.NewReaderSize(r, ReadBufferSize), max: max}
}

// Next returns the next message, without its terminator and surrounding white space; it is valid
// until the next call. reason is non-empty (and line nil) for a line that was dropped
// (stream.ReasonLineTooLong, stream.ReasonPartialLine). err is the body's error (io.EOF at a
// clean end); it comes with a nil line, after every complete line, and Next must not be called
// again.
func (f *LineReader) Next() (line []byte, reason string, err error) {
	for {
		if f.err != nil {
			return nil, "", f.err
		}
		chunk, err := f.src.ReadSlice('\n')
		if len(chunk) > 0 {
			// A chunk that completes a line ends with '\n', so err is nil: nothing is lost here.
			if line, reason := f.absorb(chunk); line != nil || reason != "" {
				return line, reason, nil
			}
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		f.err = err
		if f.over || len(bytes.TrimSpace(f.line)) > 0 {
			f.line, f.over = f.line[:0], false
			return nil, stream.ReasonPartialLine, nil
		}
		return nil, "", err
	}
}

// absorb adds chunk (up to and including a '\n', or a full buffer) to the current line and
// returns the line if chunk completed one, or the reason if it completed a dropped one.
func (f *LineReader) absorb(chunk []byte) (line []byte, reason string) {
	endsLF := chunk[len(chunk)-1] == '\n'
	if !f.over && len(f.line)+len(chunk) > f.max+2 {
		f.over = true
		f.prevCR = len(f.line) > 0 && f.line[len(f.line)-1] == '\r'
		f.line = f.line[:0]
	}
	if f.over {
		ends := endsLF && (len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' || len(chunk) == 1 && f.prevCR)
		f.prevCR = chunk[len(chunk)-1] == '\r'
		if ends {
			f.over = false
			return nil, stream.ReasonLineTooLong
		}
		return nil, ""
	}
	var complete []byte
	if len(f.line) == 0 && endsLF && len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' {
		// The common case: the whole line is in the read buffer. It is returned from there,
		// without a copy; it stays valid until the next read.
		complete = chunk
	} else {
		f.line = append(f.line, chunk...)
		if !endsLF || len(f.line) < 2 || f.line[len(f.line)-2] != '\r' {
			return nil, ""
		}
		complete = f.line
		f.line = f.line[:0] // reused only after the caller is done with the line
	}
	msg := bytes.TrimSpace(complete[:len(complete)-2])
	if len(msg) == 0 {
		return nil, "" // keep-alive
	}
	return msg, ""
}

// DescribeNetErr shortens a transport error for the status page: the *url.Error wrapper
// repeats the method and URL (with the filter), which add nothing there.
func DescribeNetErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
