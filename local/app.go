package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// runningApp is the started task's essential container, as a process or a container.
type runningApp interface {
	// Describe says what runs, for the progress lines.
	Describe() string
	// PID is the app's process id on this host (0 if unknown).
	PID() int
	// Exited is closed when the app has exited.
	Exited() <-chan struct{}
	// ExitStatus describes how it exited, once Exited is closed.
	ExitStatus() string
	// WaitHealthy returns when the health check first passes.
	WaitHealthy(ctx context.Context) error
	// Stop sends SIGTERM and, after timeout, SIGKILL, as ECS does with stopTimeout.
	Stop(ctx context.Context, timeout time.Duration) error
}

// appCounters are the app's final counts, from its "stopped" log line.
type appCounters struct {
	Received, Matched, Written, Failed uint64
	Known                              bool
}

// appOutput passes the app's log lines through with a prefix and watches them for the final
// counters. The app's logs never carry a secret value (main_test.go checks that), so passing
// them through shows nothing more than CloudWatch would.
type appOutput struct {
	mu       sync.Mutex
	out      io.Writer // nil when -quiet
	counters appCounters
	pending  map[string]*bytes.Buffer
}

func newAppOutput(out io.Writer) *appOutput {
	return &appOutput{out: out, pending: map[string]*bytes.Buffer{}}
}

// writer returns an io.Writer for one of the app's streams ("stdout" or "stderr").
func (a *appOutput) writer(stream string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		buf := a.pending[stream]
		if buf == nil {
			buf = &bytes.Buffer{}
			a.pending[stream] = buf
		}
		buf.Write(p)
		for {
			i := bytes.IndexByte(buf.Bytes(), '\n')
			if i < 0 {
				break
			}
			line := string(bytes.TrimRight(buf.Next(i+1), "\r\n"))
			a.lineLocked(stream, line)
		}
		return len(p), nil
	})
}

// flush passes on partial last lines.
func (a *appOutput) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for stream, buf := range a.pending {
		if buf.Len() > 0 {
			a.lineLocked(stream, buf.String())
			buf.Reset()
		}
	}
}

func (a *appOutput) lineLocked(stream, line string) {
	if a.out != nil {
		prefix := "app | "
		if stream == "stderr" {
			prefix = "app ! "
		}
		fmt.Fprintln(a.out, prefix+line)
	}
	a.scanLocked(line)
}

// scanLocked reads the counters from the service's last log line, which it writes once the
// queue has drained: {"msg":"stopped","received":N,"matched":N,"written":N,...}.
func (a *appOutput) scanLocked(line string) {
	if !bytes.Contains([]byte(line), []byte(`"stopped"`)) {
		return
	}
	var rec struct {
		Msg                                string
		Received, Matched, Written, Failed uint64
	}
	if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "stopped" {
		a.counters = appCounters{Received: rec.Received, Matched: rec.Matched, Written: rec.Written, Failed: rec.Failed, Known: true}
	}
}

// scanAll reads the counters from a complete log (a container's, read back after it stopped,
// in case the streamed copy missed the last lines).
func (a *appOutput) scanAll(log []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, line := range bytes.Split(log, []byte("\n")) {
		// Docker's multiplexed log format puts an 8-byte frame header before each line.
		if i := bytes.IndexByte(line, '{'); i > 0 {
			line = line[i:]
		}
		a.scanLocked(string(line))
	}
}

func (a *appOutput) finalCounters() appCounters {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counters
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// pageCounters reads /api/status, the fallback for the summary when the app was killed before
// it could log its final counts.
func pageCounters(ctx context.Context, base string) (appCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/status", nil)
	if err != nil {
		return appCounters{}, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return appCounters{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Counters struct{ Received, Matched, Written, Failed uint64 }
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return appCounters{}, err
	}
	c := st.Counters
	return appCounters{Received: c.Received, Matched: c.Matched, Written: c.Written, Failed: c.Failed, Known: true}, nil
}

// Compile-time checks that both ways of running the app fit runningApp.
var (
	_ runningApp = (*processApp)(nil)
	_ runningApp = (*containerApp)(nil)
)
