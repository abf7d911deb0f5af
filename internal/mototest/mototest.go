// Package mototest starts moto_server, a real AWS wire-protocol emulator, for the tests of any
// package. Each call to Start gets its own server on a free port, so tests never share state
// and never assume port 5000.
package mototest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/streammatch/streammatch/internal/syncbuf"
)

// Region is the region AWSConfig uses; moto keeps separate state per region.
const Region = "us-east-1"

// startTimeout bounds how long Start waits for moto_server to answer. moto imports every
// service's models at start-up, which takes a few seconds on a loaded 2-core machine.
const startTimeout = 60 * time.Second

// Server is a running moto_server, killed when the test that started it ends.
type Server struct {
	// URL is the endpoint, e.g. "http://127.0.0.1:41234", for BaseEndpoint or AWS_ENDPOINT_URL.
	URL string
}

// Option changes how Start launches moto_server.
type Option func(*options)

type options struct {
	env []string
}

// WithEnv adds "NAME=value" entries to moto_server's environment, e.g.
// "INITIAL_NO_AUTH_ACTION_COUNT=5" to make moto enforce IAM policies after five calls.
func WithEnv(kv ...string) Option {
	return func(o *options) { o.env = append(o.env, kv...) }
}

// Start launches `moto_server -H 127.0.0.1 -p PORT` on a free port, waits until it answers
// HTTP, and registers a cleanup that kills its whole process group (moto_server is usually a
// pyenv shim that execs Python, so killing the first process alone could leave Python running).
// moto's output is kept in a buffer and printed only when the test fails.
//
// When moto_server is not on PATH the test is skipped with the reason, unless the CI
// environment variable is set: in CI a missing emulator is a broken machine, not a reason to
// pass silently.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		msg := "moto_server not on PATH (pip install 'moto[server]'): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	// Picking a free port and handing it to another process is racy: something else may take
	// the port in between. A second and third try make that harmless.
	var lastErr error
	for range 3 {
		srv, err := launch(t, bin, o)
		if err == nil {
			return srv
		}
		lastErr = err
	}
	t.Fatalf("start moto_server: %v", lastErr)
	return nil
}

func launch(t testing.TB, bin string, o options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(childEnv(os.Environ()), o.env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	kill := func() {
		// A negative pid signals the process group that Setpgid created.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}

	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(url, exited); err != nil {
		kill()
		return nil, fmt.Errorf("%w; moto_server output:\n%s", err, out.String())
	}
	t.Cleanup(func() {
		kill()
		if t.Failed() {
			t.Logf("moto_server output:\n%s", out.String())
		}
	})
	return &Server{URL: url}, nil
}

// AWSConfig returns a configuration for region us-east-1 with static test credentials that
// sends every request to this server. It is built by hand rather than with
// config.LoadDefaultConfig so that nothing from the developer's environment or ~/.aws leaks
// in (a real profile, a real endpoint). Tests that need other credentials, e.g. keys created
// in moto's IAM, replace Credentials on the returned value.
func (s *Server) AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(s.URL),
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls until moto answers any HTTP request, the process exits, or startTimeout passes.
func waitReady(url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/moto-api/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("moto_server exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("moto_server did not answer on %s within %s", url, startTimeout)
		case <-tick.C:
		}
	}
}

// childEnv keeps only what moto_server and the pyenv shim in front of it need. A child started
// with a nil Env would inherit every variable, including any real AWS credentials or tokens of
// the developer running the tests; moto needs none of them.
func childEnv(environ []string) []string {
	keep := map[string]bool{
		"PATH": true, "HOME": true, "USER": true, "TMPDIR": true,
		"LANG": true, "LC_ALL": true, "LC_CTYPE": true,
		"PYENV_ROOT": true, "PYENV_VERSION": true, "VIRTUAL_ENV": true, "PYTHONPATH": true,
	}
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if keep[name] {
			env = append(env, kv)
		}
	}
	return env
}

// EnforceIAM makes moto check every later request against IAM policies, through its
// /moto-api/reset-auth endpoint (the body is the new INITIAL_NO_AUTH_ACTION_COUNT). Start the
// server with WithEnv("INITIAL_NO_AUTH_ACTION_COUNT=1000000") so that setup runs unchecked.
func (s *Server) EnforceIAM(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset-auth", "text/plain", strings.NewReader("0"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto reset-auth: %s", resp.Status)
	}
}

// CheckAllowed fails the test unless err shows the call was allowed (nil) or denied (HTTP 403),
// as wanted.
func CheckAllowed(t testing.TB, what string, err error, allowed bool) {
	t.Helper()
	var re *awshttp.ResponseError
	denied := errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
	switch {
	case allowed && err != nil:
		t.Errorf("%s: got %v, want it allowed", what, err)
	case !allowed && !denied:
		t.Errorf("%s: got %v, want it denied with 403", what, err)
	}
}
