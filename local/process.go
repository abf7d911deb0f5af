package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// buildBinary builds the repository's streammatch binary into a temporary directory that is
// removed at teardown.
func buildBinary(ctx context.Context, repo string, cl *cleanups) (string, error) {
	dir, err := os.MkdirTemp("", "streammatch-local-*")
	if err != nil {
		return "", err
	}
	cl.add("build directory", func(context.Context) error { return os.RemoveAll(dir) })
	bin := filepath.Join(dir, "streammatch")
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags=-X main.version=local", "-o", bin, ".")
	cmd.Dir = repo
	cmd.Env = toolEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// processApp is the app as a child process. Its environment is exactly env plus PATH: nothing
// else is inherited (exec.Cmd with a nil Env would pass every variable of this process, which
// includes whatever AWS keys the developer has).
type processApp struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	health  string // http://host:port/healthz
}

func startProcess(bin string, env []string, healthURL string, out *appOutput) (*processApp, error) {
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Dir = filepath.Dir(bin)
	cmd.Stdout = out.writer("stdout")
	cmd.Stderr = out.writer("stderr")
	// Its own process group: Ctrl-C in the terminal reaches local only, and local stops the app
	// with SIGTERM as ECS does, after which the app drains its queue.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the app: %w", err)
	}
	p := &processApp{cmd: cmd, exited: make(chan struct{}), health: healthURL}
	go func() {
		p.waitErr = cmd.Wait()
		out.flush()
		close(p.exited)
	}()
	return p, nil
}

func (p *processApp) Describe() string { return "process, pid " + strconv.Itoa(p.PID()) }

func (p *processApp) PID() int { return p.cmd.Process.Pid }

func (p *processApp) Exited() <-chan struct{} { return p.exited }

func (p *processApp) ExitStatus() string {
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		return "exit status 0"
	case errors.As(p.waitErr, &ee):
		return ee.ProcessState.String()
	default:
		return p.waitErr.Error()
	}
}

// WaitHealthy polls /healthz, which is what the container's health check command asks too.
func (p *processApp) WaitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.health, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("the app exited before it was healthy (%s)", p.ExitStatus())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *processApp) Stop(ctx context.Context, timeout time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	return fmt.Errorf("the app did not stop within stopTimeout %s after SIGTERM and was killed", timeout)
}
