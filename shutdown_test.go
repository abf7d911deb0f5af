package main

// Shutdown and restart: ECS stops a task with SIGTERM and, stopTimeout (30 s by default)
// later, SIGKILL. Everything the service has queued for DynamoDB must be written in between,
// and a task started again must not duplicate what the last one wrote.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"
	"github.com/streammatch/streammatch/twittersim"
)

// fullQueueOptions make a fixture whose DynamoDB answers slowly while the stream runs fast, so that the
// writer's queue fills up and stays full.
func fullQueueOptions(queueSize int) []serviceOption {
	return []serviceOption{
		withDynamoProxy(),
		withEnv("QUEUE_SIZE", fmt.Sprint(queueSize)),
		withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive, c.NoticeEvery = 400, 100*time.Millisecond, 0 }),
	}
}

const shutdownQueueSize = 100

// slowDynamo is the delay of every write while the queue is full: 100 items are four batches,
// about 1.6 s to drain, well inside the 10 s the tests allow and the 8 s drain budget.
const slowDynamo = 400 * time.Millisecond

func TestService_SIGTERMWithFullQueueWritesEverything(t *testing.T) {
	s := startService(t, testCreds, fullQueueOptions(shutdownQueueSize)...)
	s.waitFor("tweets flowing", func(st apiStatus) bool { return st.Counters.Written > 0 })
	s.proxy.SetDelay(slowDynamo)
	st := s.waitFor("a full queue", func(st apiStatus) bool { return st.QueueDepth == shutdownQueueSize })

	start := time.Now()
	s.stop() // cancels run's context, as main does on SIGTERM, and allows 10 s
	took := time.Since(start)
	last := finalCounters(t, s.stdout.String())
	t.Logf("queue of %d drained in %v: matched %d, written %d, failed %d", st.QueueDepth, took.Round(time.Millisecond), last.Matched, last.Written, last.Failed)
	if last.Failed != 0 || last.Matched != last.Written || last.Written < st.Counters.Written+shutdownQueueSize {
		t.Errorf("after shutdown: matched %d, written %d, failed %d; want every match written, at least the %d queued at SIGTERM",
			last.Matched, last.Written, last.Failed, shutdownQueueSize)
	}
	s.checkTableMatchesWritten(last.Written)
	s.assertNoLeak()
}

// TestProcess_SIGTERMWithFullQueueExitsZero runs the built binary and sends it a real SIGTERM,
// so that main's signal handling is covered too, not only run's context.
func TestProcess_SIGTERMWithFullQueueExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "streammatch")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	f := newFixture(t, testCreds, fullQueueOptions(shutdownQueueSize)...)
	// The child gets exactly this environment: the fixture's, test AWS keys, nothing else
	// from the test process (exec.Cmd with a nil Env would pass everything on).
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range awsTestEnv(filepath.Join(t.TempDir(), "none")) {
		env = append(env, k+"="+v)
	}
	for k, v := range f.env {
		env = append(env, k+"="+v)
	}
	var stdout, stderr syncbuf.Buffer
	cmd := exec.Command(bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	s := &service{fixture: f, stdout: &stdout, stderr: &stderr, done: make(chan error, 1), stopped: true}
	s.base = "http://" + waitListening(t, &stdout, exited)

	s.waitFor("tweets flowing", func(st apiStatus) bool { return st.Counters.Written > 0 })
	f.proxy.SetDelay(slowDynamo)
	st := s.waitFor("a full queue", func(st apiStatus) bool { return st.QueueDepth == shutdownQueueSize })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the process did not exit within 10 s of SIGTERM")
	}
	last := finalCounters(t, stdout.String())
	t.Logf("queue of %d drained and exited in %v: matched %d, written %d, failed %d",
		st.QueueDepth, time.Since(start).Round(time.Millisecond), last.Matched, last.Written, last.Failed)
	if last.Failed != 0 || last.Matched != last.Written {
		t.Errorf("after SIGTERM: matched %d, written %d, failed %d; want every match written", last.Matched, last.Written, last.Failed)
	}
	s.checkTableMatchesWritten(last.Written)
	s.assertNoLeak()
	if got := f.sim.Stats().MaxConnections; got > 1 {
		t.Errorf("the simulator saw %d connections at once, want 1", got)
	}
}

// TestService_RestartDoesNotDuplicateItems plays the same stream lines to a task, stops it,
// and plays them again to a new task against the same table: the item keys depend only on the
// message, so the second task overwrites rather than adds.
func TestService_RestartDoesNotDuplicateItems(t *testing.T) {
	f := newFixture(t, testCreds, withSim(func(c *twittersim.Config) { c.Rate, c.KeepAlive = -1, 100*time.Millisecond }))
	var lines []string
	for i := range 40 {
		// Two tweets per user per second: a key of user and time alone would collide.
		lines = append(lines, tweetLine(5000+i, fmt.Sprintf("user%d", i%3), "User", fmt.Sprintf("streammatch restart %d", i)))
	}
	for run := 1; run <= 2; run++ {
		s := f.start()
		s.waitFor("connected", func(st apiStatus) bool { return st.Stream.State == "connected" })
		for _, l := range lines {
			s.send(l)
		}
		s.send(lines[0]) // and one repeat within the run
		s.waitFor("every line written", func(st apiStatus) bool { return st.Counters.Written == uint64(len(lines)+1) })
		s.stop()
		ids := f.scanIDs()
		if len(ids) != len(lines) {
			t.Fatalf("after run %d: %d items in the table, want %d", run, len(ids), len(lines))
		}
		for id, n := range ids {
			if n != 1 {
				t.Errorf("after run %d: message %s stored %d times", run, id, n)
			}
		}
		// The next task connects only after this one's connection is gone, as on ECS.
		deadline := time.Now().Add(10 * time.Second)
		for f.sim.Stats().Connections != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}
