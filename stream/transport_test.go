package stream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// frameAll runs a lineFramer over body and returns the lines it passed on and the reasons for
// the ones it dropped.
func frameAll(t *testing.T, body io.Reader, maxLine int) (lines, skips []string, endErr error, f *lineFramer) {
	t.Helper()
	ends := 0
	f = newLineFramer(body, maxLine, framerHooks{
		validate: func(l []byte) string {
			if string(l) == "bad" {
				return "bad"
			}
			return ""
		},
		skip: func(reason string) { skips = append(skips, reason) },
		line: func() {},
		end:  func(err error) { ends++; endErr = err },
	})
	out, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("ReadAll: %v", err)
	}
	if ends != 1 {
		t.Fatalf("end reported %d times, want once", ends)
	}
	if len(out) > 0 {
		if !strings.HasSuffix(string(out), "\r\n") {
			t.Fatalf("output %q does not end with a line terminator", out)
		}
		lines = strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n")
	}
	return lines, skips, endErr, f
}

func TestLineFramer(t *testing.T) {
	const maxLine = 32
	long := strings.Repeat("x", maxLine+1)
	exact := strings.Repeat("y", maxLine)
	tests := []struct {
		name      string
		body      string
		wantLines []string
		wantSkips []string
	}{
		{name: "messages end with CRLF", body: "a\r\nb\r\n", wantLines: []string{"a", "b"}},
		{name: "a lone LF does not end a message", body: "a\nb\r\n", wantLines: []string{"a\nb"}},
		{name: "a lone CR does not end a message", body: "a\rb\r\n", wantLines: []string{"a\rb"}},
		{name: "keep-alives are swallowed", body: "\r\n\r\na\r\n \r\n\n\r\n", wantLines: []string{"a"}},
		{name: "bare LF keep-alives before a message are dropped", body: "\n\n{x}\r\n", wantLines: []string{"{x}"}},
		{name: "a line of exactly MaxLine passes", body: exact + "\r\n", wantLines: []string{exact}},
		{name: "a longer line is skipped, the stream goes on", body: "a\r\n" + long + "\r\nb\r\n",
			wantLines: []string{"a", "b"}, wantSkips: []string{"line_too_long"}},
		{name: "a very long line with lone LFs is one skip", body: long + "\n" + long + "\n" + long + "\r\nb\r\n",
			wantLines: []string{"b"}, wantSkips: []string{"line_too_long"}},
		{name: "a partial line at the end is skipped", body: "a\r\nbc", wantLines: []string{"a"}, wantSkips: []string{"partial_line"}},
		{name: "a partial line ending in CR is skipped", body: "a\r\nbc\r", wantLines: []string{"a"}, wantSkips: []string{"partial_line"}},
		{name: "a partial over-long line is skipped once", body: long + long, wantSkips: []string{"partial_line"}},
		{name: "trailing whitespace is not a partial line", body: "a\r\n\n", wantLines: []string{"a"}},
		{name: "an invalid line is skipped with the validator's reason", body: "bad\r\nok\r\n",
			wantLines: []string{"ok"}, wantSkips: []string{"bad"}},
		{name: "an empty body", body: ""},
	}
	for _, tc := range tests {
		for _, reader := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"one byte at a time", iotest.OneByteReader},
		} {
			t.Run(tc.name+"/"+reader.name, func(t *testing.T) {
				lines, skips, endErr, _ := frameAll(t, reader.wrap(strings.NewReader(tc.body)), maxLine)
				if !slices.Equal(lines, tc.wantLines) {
					t.Errorf("lines = %q, want %q", lines, tc.wantLines)
				}
				if !slices.Equal(skips, tc.wantSkips) {
					t.Errorf("skips = %q, want %q", skips, tc.wantSkips)
				}
				if !errors.Is(endErr, io.EOF) {
					t.Errorf("end error = %v, want EOF", endErr)
				}
			})
		}
	}
}

func TestLineFramer_DoesNotBufferOversizedLines(t *testing.T) {
	body := "{" + strings.Repeat("z", 4<<20) + "}\r\nok\r\n" // a 4 MiB line
	lines, skips, _, f := frameAll(t, strings.NewReader(body), DefaultMaxLine)
	if !slices.Equal(lines, []string{"ok"}) || !slices.Equal(skips, []string{"line_too_long"}) {
		t.Errorf("lines = %q, skips = %q; want [ok] and [line_too_long]", lines, skips)
	}
	if limit := DefaultMaxLine + 2 + readBufferSize; cap(f.line) > limit {
		t.Errorf("line buffer grew to %d bytes, want at most %d", cap(f.line), limit)
	}
}

// TestLineFramer_TerminatorAcrossReads puts the '\r' of a terminator at the very end of the
// read buffer and its '\n' in the next read, for a line kept and for a line being skipped.
func TestLineFramer_TerminatorAcrossReads(t *testing.T) {
	long := strings.Repeat("x", readBufferSize-1)
	body := long + "\r\nok\r\n"
	t.Run("kept", func(t *testing.T) {
		lines, skips, _, _ := frameAll(t, strings.NewReader(body), DefaultMaxLine)
		if len(lines) != 2 || lines[0] != long || lines[1] != "ok" || len(skips) != 0 {
			t.Errorf("got %d lines (want 2: the long one and ok), skips %q", len(lines), skips)
		}
	})
	t.Run("skipped", func(t *testing.T) {
		lines, skips, _, _ := frameAll(t, strings.NewReader(body), 32)
		if !slices.Equal(lines, []string{"ok"}) || !slices.Equal(skips, []string{"line_too_long"}) {
			t.Errorf("lines = %q, skips = %q; want [ok] and [line_too_long]", lines, skips)
		}
	})
}

func TestLineFramer_ReportsReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	body := io.MultiReader(strings.NewReader("a\r\nhalf"), iotest.ErrReader(boom))
	var skips []string
	var endErr error
	f := newLineFramer(body, 64, framerHooks{
		validate: func([]byte) string { return "" },
		skip:     func(r string) { skips = append(skips, r) },
		line:     func() {},
		end:      func(err error) { endErr = err },
	})
	out, err := io.ReadAll(f)
	if string(out) != "a\r\n" || !errors.Is(err, boom) {
		t.Errorf("ReadAll = %q, %v; want %q, %v", out, err, "a\r\n", boom)
	}
	if !slices.Equal(skips, []string{"partial_line"}) || !errors.Is(endErr, boom) {
		t.Errorf("skips = %q, end = %v; want [partial_line], %v", skips, endErr, boom)
	}
}

func TestRewriteTransport(t *testing.T) {
	tests := []struct{ base, want string }{
		{"http://127.0.0.1:8081", "http://127.0.0.1:8081/1.1/statuses/filter.json?track=a%2Cb"},
		{"http://127.0.0.1:8081/", "http://127.0.0.1:8081/1.1/statuses/filter.json?track=a%2Cb"},
		{"https://sim.example/prefix/", "https://sim.example/prefix/1.1/statuses/filter.json?track=a%2Cb"},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			base, _ := url.Parse(tc.base)
			var got *http.Request
			rt := &rewriteTransport{base: base, next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r
				return nil, errors.New("stop")
			})}
			orig := "https://stream.twitter.com/1.1/statuses/filter.json?track=a%2Cb"
			req, _ := http.NewRequest(http.MethodPost, orig, nil)
			_, _ = rt.RoundTrip(req)
			if got.URL.String() != tc.want || got.Host != "" {
				t.Errorf("request went to %s (Host %q), want %s", got.URL, got.Host, tc.want)
			}
			if req.URL.String() != orig {
				t.Errorf("the original request was modified: %s", req.URL)
			}
		})
	}
}

func TestConnObserver_AllowsOneRequestPerSession(t *testing.T) {
	calls := 0
	o := &connObserver{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: io.NopCloser(strings.NewReader(""))}, nil
	}), stallTimeout: DefaultStallTimeout, maxLine: DefaultMaxLine}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/1.1/statuses/filter.json", nil)

	if _, err := o.RoundTrip(req); !errors.Is(err, errOneRequestPerSession) {
		t.Errorf("without a session: err = %v, want %v", err, errOneRequestPerSession)
	}
	sess := newConnSession(context.Background(), nil)
	o.begin(sess)
	var se *statusError
	if _, err := o.RoundTrip(req); !errors.As(err, &se) || se.status != 503 {
		t.Errorf("first request: err = %v, want a 503 status error", err)
	}
	if _, err := o.RoundTrip(req); !errors.Is(err, errOneRequestPerSession) {
		t.Errorf("second request: err = %v, want %v", err, errOneRequestPerSession)
	}
	if calls != 1 {
		t.Errorf("requests sent = %d, want 1", calls)
	}
	if end := sess.result(); end.kind != endHTTP || end.status != 503 {
		t.Errorf("session end = %+v, want HTTP 503", end)
	}
	if live, maxLive := o.connections(); live != 0 || maxLive != 1 {
		t.Errorf("connections live=%d max=%d, want 0 and 1", live, maxLive)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzLineFramer checks the framer against a direct model of the v1.1 framing: split the body
// on "\r\n"; each complete segment longer than maxLine is line_too_long, a blank one is a
// keep-alive, any other is validated; a started last segment is partial_line.
//
//	go test ./stream -run '^$' -fuzz FuzzLineFramer -fuzztime 30s
func FuzzLineFramer(f *testing.F) {
	for _, seed := range []string{"a\r\nb\r\n", "a\nb\r\n\r\n", "X\r\nok", strings.Repeat("y", 40) + "\r\n\r", " \n\r\r\n"} {
		f.Add([]byte(seed))
	}
	const maxLine = 16
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []string
		fr := newLineFramer(iotest.HalfReader(strings.NewReader(string(body))), maxLine, framerHooks{
			validate: func(l []byte) string {
				if strings.Contains(string(l), "X") {
					got = append(got, "skip:bad")
					return "bad"
				}
				got = append(got, "line:"+string(l))
				return ""
			},
			skip: func(reason string) {
				if reason != "bad" {
					got = append(got, "skip:"+reason)
				}
			},
			line: func() {},
			end:  func(error) {},
		})
		out, err := io.ReadAll(fr)
		if err != nil {
			t.Fatal(err)
		}

		var want []string
		var wantOut strings.Builder
		segments := strings.Split(string(body), "\r\n")
		for i, seg := range segments {
			last := i == len(segments)-1
			trimmed := strings.TrimSpace(seg)
			switch {
			case last:
				if len(seg) > maxLine+2 || trimmed != "" {
					want = append(want, "skip:partial_line")
				}
			case len(seg) > maxLine:
				want = append(want, "skip:line_too_long")
			case trimmed == "":
			case strings.Contains(trimmed, "X"):
				want = append(want, "skip:bad")
			default:
				want = append(want, "line:"+trimmed)
				wantOut.WriteString(trimmed + "\r\n")
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("events = %q\nwant     %q", got, want)
		}
		if string(out) != wantOut.String() {
			t.Fatalf("output = %q, want %q", out, wantOut.String())
		}
	})
}
