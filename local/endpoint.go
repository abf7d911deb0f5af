package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/localstack"
	"github.com/testcontainers/testcontainers-go/wait"
)

// awsEndpoint is the AWS API emulator the run provisions in and the app writes to.
type awsEndpoint struct {
	URL  string
	What string // how it was found or started, for the progress line
	// Ephemeral is true when local started it: its state ends with the run.
	Ephemeral bool
}

// errNoEndpoint lists the ways to get an AWS endpoint.
var errNoEndpoint = errors.New(`no AWS endpoint: -aws auto found none of
  1. AWS_ENDPOINT_URL (an emulator that is already running, e.g. http://127.0.0.1:4566);
  2. moto_server on PATH (pip install 'moto[server]');
  3. a container engine for LocalStack (with LOCALSTACK_AUTH_TOKEN) or the motoserver/moto image
     (Docker, or podman's socket through DOCKER_HOST).
Install one of them, or name an endpoint with -aws URL`)

// startEndpoint finds or starts the AWS endpoint -aws asks for. findEngine is called only when
// a container is needed.
func startEndpoint(ctx context.Context, o options, getenv func(string) string, getEngine func() (*engine, error), cl *cleanups, say func(string, ...any)) (awsEndpoint, error) {
	switch o.AWS {
	case "moto":
		if path, err := exec.LookPath("moto_server"); err == nil {
			return startMotoServer(ctx, path, cl)
		}
		eng, err := getEngine()
		if err != nil {
			return awsEndpoint{}, fmt.Errorf("-aws moto: moto_server is not on PATH and %w", err)
		}
		return startMotoContainer(ctx, o.MotoImage, eng, cl)
	case "localstack":
		eng, err := getEngine()
		if err != nil {
			return awsEndpoint{}, fmt.Errorf("-aws localstack needs a container engine: %w", err)
		}
		return startLocalStack(ctx, o.LocalStackImage, getenv("LOCALSTACK_AUTH_TOKEN"), eng, cl, say)
	case "auto":
		if u := strings.TrimSpace(getenv("AWS_ENDPOINT_URL")); u != "" {
			return useEndpoint(ctx, u, "AWS_ENDPOINT_URL")
		}
		if path, err := exec.LookPath("moto_server"); err == nil {
			return startMotoServer(ctx, path, cl)
		}
		eng, err := getEngine()
		if err != nil {
			return awsEndpoint{}, errNoEndpoint
		}
		if tok := getenv("LOCALSTACK_AUTH_TOKEN"); tok != "" {
			return startLocalStack(ctx, o.LocalStackImage, tok, eng, cl, say)
		}
		return startMotoContainer(ctx, o.MotoImage, eng, cl)
	default:
		return useEndpoint(ctx, o.AWS, "-aws")
	}
}

// useEndpoint checks that an endpoint someone else runs answers HTTP at all.
func useEndpoint(ctx context.Context, u, from string) (awsEndpoint, error) {
	u = strings.TrimRight(u, "/")
	if err := waitHTTP(ctx, u, 5*time.Second, nil); err != nil {
		return awsEndpoint{}, fmt.Errorf("the AWS endpoint %s (from %s) does not answer: %w", u, from, err)
	}
	return awsEndpoint{URL: u, What: "endpoint from " + from}, nil
}

// startMotoServer starts `moto_server -H 127.0.0.1 -p PORT` in its own process group (it is
// usually a pyenv shim that execs Python, so the whole group is stopped at teardown).
func startMotoServer(ctx context.Context, path string, cl *cleanups) (awsEndpoint, error) {
	port, err := freePort("127.0.0.1")
	if err != nil {
		return awsEndpoint{}, err
	}
	out := &boundedBuffer{max: 64 << 10}
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = toolEnv()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return awsEndpoint{}, fmt.Errorf("start moto_server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	cl.add("moto_server", func(context.Context) error {
		stopProcessGroup(cmd.Process.Pid, exited, 5*time.Second)
		return nil
	})
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP(ctx, u, 60*time.Second, exited); err != nil {
		return awsEndpoint{}, fmt.Errorf("moto_server did not come up: %w; its output: %s", err, tailLines(out.String(), 5))
	}
	return awsEndpoint{URL: u, What: "moto_server (pid " + strconv.Itoa(cmd.Process.Pid) + ")", Ephemeral: true}, nil
}

// startMotoContainer runs the pinned motoserver/moto image through testcontainers-go.
func startMotoContainer(ctx context.Context, image string, eng *engine, cl *cleanups) (awsEndpoint, error) {
	useEngine(eng)
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts("5000/tcp"),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/moto-api/").WithPort("5000/tcp").WithStartupTimeout(90*time.Second)),
	)
	if c != nil {
		cl.add("moto container", func(ctx context.Context) error { return c.Terminate(ctx) })
	}
	if err != nil {
		return awsEndpoint{}, fmt.Errorf("start %s on %s: %w (is the image present, or a registry reachable?)", image, eng, err)
	}
	u, err := c.PortEndpoint(ctx, "5000/tcp", "http")
	if err != nil {
		return awsEndpoint{}, fmt.Errorf("moto container port: %w", err)
	}
	return awsEndpoint{URL: u, What: image + " container on " + eng.String(), Ephemeral: true}, nil
}

// startLocalStack runs the pinned LocalStack image through testcontainers-go's module, passing
// LOCALSTACK_AUTH_TOKEN through.
func startLocalStack(ctx context.Context, image, token string, eng *engine, cl *cleanups, say func(string, ...any)) (awsEndpoint, error) {
	if token == "" {
		say("warning: LOCALSTACK_AUTH_TOKEN is not set. LocalStack images released since March 2026 (and `latest`) refuse to start without one; %s predates that. Get a free token at https://app.localstack.cloud and export LOCALSTACK_AUTH_TOKEN", image)
	}
	useEngine(eng)
	env := map[string]string{"SERVICES": "sts,iam,secretsmanager,ssm,dynamodb"}
	if token != "" {
		env["LOCALSTACK_AUTH_TOKEN"] = token
	}
	c, err := localstack.Run(ctx, image, testcontainers.WithEnv(env))
	if c != nil {
		cl.add("LocalStack container", func(ctx context.Context) error { return c.Terminate(ctx) })
	}
	if err != nil {
		hint := ""
		if token == "" {
			hint = "; LOCALSTACK_AUTH_TOKEN is not set, which newer LocalStack images require"
		}
		return awsEndpoint{}, fmt.Errorf("start %s on %s: %w%s", image, eng, err, hint)
	}
	u, err := c.PortEndpoint(ctx, "4566/tcp", "http")
	if err != nil {
		return awsEndpoint{}, fmt.Errorf("LocalStack port: %w", err)
	}
	return awsEndpoint{URL: u, What: image + " container on " + eng.String(), Ephemeral: true}, nil
}

// waitHTTP polls u until it answers any HTTP response, exited is closed, or timeout passes.
func waitHTTP(ctx context.Context, u string, timeout time.Duration, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		last = err
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", timeout, last)
		}
	}
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// boundedBuffer keeps the last max bytes written to it; safe for concurrent writers.
type boundedBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Write(p)
	if over := b.b.Len() - b.max; over > 0 {
		b.b.Next(over)
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
