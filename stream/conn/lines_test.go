package conn

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// frameAll runs a LineReader over body and returns the lines it returned and the reasons for
// the ones it dropped.
func frameAll(t *testing.T, body io.Reader, maxLine int) (lines, skips []string, endErr error, f *LineReader) {
	t.Helper()
	f = NewLineReader(body, maxLine)
	for {
		line, reason, err := f.Next()
		switch {
		case reason != "":
			skips = append(skips, reason)
		case line != nil:
			lines = append(lines, string(line))
		}
		if err != nil {
			if line != nil || reason != "" {
				t.Fatalf("Next returned a record with its error %v", err)
			}
			if _, _, again := f.Next(); again != err {
				t.Fatalf("Next after the end: %v, want the same error %v", again, err)
			}
			return lines, skips, err, f
		}
	}
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
	if limit := DefaultMaxLine + 2 + ReadBufferSize; cap(f.line) > limit {
		t.Errorf("line buffer grew to %d bytes, want at most %d", cap(f.line), limit)
	}
}

// TestLineFramer_TerminatorAcrossReads puts the '\r' of a terminator at the very end of the
// read buffer and its '\n' in the next read, for a line kept and for a line being skipped.
func TestLineFramer_TerminatorAcrossReads(t *testing.T) {
	long := strings.Repeat("x", ReadBufferSize-1)
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
	lines, skips, endErr, _ := frameAll(t, body, 64)
	if !slices.Equal(lines, []string{"a"}) || !slices.Equal(skips, []string{"partial_line"}) || !errors.Is(endErr, boom) {
		t.Errorf("lines = %q, skips = %q, end = %v; want [a], [partial_line], %v", lines, skips, endErr, boom)
	}
}

// TestLineFramer_LineValidUntilNextCall pins the contract the zero-copy path relies on: a
// returned line is the caller's until the next call, even when the next read refills the buffer.
func TestLineFramer_LineValidUntilNextCall(t *testing.T) {
	first := strings.Repeat("a", ReadBufferSize/2)
	second := strings.Repeat("b", ReadBufferSize/2+100)
	f := NewLineReader(strings.NewReader(first+"\r\n"+second+"\r\n"), DefaultMaxLine)
	line, _, _ := f.Next()
	if string(line) != first {
		t.Fatalf("first line: %d bytes, want %d", len(line), len(first))
	}
	line, _, _ = f.Next()
	if string(line) != second {
		t.Fatalf("second line: %d bytes, want %d", len(line), len(second))
	}
}

// FuzzLineFramer checks the framer against a direct model of the v1.1 framing: split the body
// on "\r\n"; each complete segment longer than maxLine is line_too_long, a blank one is a
// keep-alive, any other is a line; a started last segment is partial_line.
//
//	go test ./stream/conn -run '^$' -fuzz FuzzLineFramer -fuzztime 30s
func FuzzLineFramer(f *testing.F) {
	for _, seed := range []string{"a\r\nb\r\n", "a\nb\r\n\r\n", "x\r\nok", strings.Repeat("y", 40) + "\r\n\r", " \n\r\r\n"} {
		f.Add([]byte(seed))
	}
	const maxLine = 16
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []string
		fr := NewLineReader(iotest.HalfReader(strings.NewReader(string(body))), maxLine)
		for {
			line, reason, err := fr.Next()
			switch {
			case reason != "":
				got = append(got, "skip:"+reason)
			case line != nil:
				got = append(got, "line:"+string(line))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}

		var want []string
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
			default:
				want = append(want, "line:"+trimmed)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("events = %q\nwant     %q", got, want)
		}
	})
}
