package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"
)

// engine is a Docker-compatible API that testcontainers-go can use: Docker's socket, or
// podman's.
type engine struct {
	// Host is the DOCKER_HOST value, e.g. unix:///run/podman/podman.sock.
	Host string
	// Podman is true when the socket is podman's (its /_ping answers with Libpod headers).
	Podman bool
	// Started is true when local started the podman service itself, for this run only.
	Started bool
}

func (e *engine) String() string {
	what := "Docker"
	if e.Podman {
		what = "podman"
	}
	if e.Started {
		return fmt.Sprintf("%s at %s (started for this run)", what, e.Host)
	}
	return fmt.Sprintf("%s at %s", what, e.Host)
}

// engineCandidates are the sockets tried, in order: DOCKER_HOST, Docker's default, podman's
// rootful and rootless defaults, Docker's rootless and Desktop sockets.
func engineCandidates(getenv func(string) string) []string {
	var out []string
	if h := getenv("DOCKER_HOST"); h != "" {
		out = append(out, h)
	}
	out = append(out, "unix:///var/run/docker.sock", "unix:///run/podman/podman.sock")
	if xdg := getenv("XDG_RUNTIME_DIR"); xdg != "" {
		out = append(out, "unix://"+xdg+"/podman/podman.sock", "unix://"+xdg+"/docker.sock")
	}
	if home := getenv("HOME"); home != "" {
		out = append(out, "unix://"+home+"/.docker/run/docker.sock")
	}
	return out
}

// findEngine returns the first engine that answers /_ping, or nil when none does.
func findEngine(ctx context.Context, getenv func(string) string) *engine {
	for _, host := range engineCandidates(getenv) {
		if podman, err := pingEngine(ctx, host); err == nil {
			return &engine{Host: host, Podman: podman}
		}
	}
	return nil
}

// pingEngine calls the Docker API's /_ping on host and reports whether podman answered.
func pingEngine(ctx context.Context, host string) (podman bool, err error) {
	client, base, err := engineClient(host)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_ping", nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s/_ping answered %d", host, resp.StatusCode)
	}
	return resp.Header.Get("Libpod-Api-Version") != "" || resp.Header.Get("Libpod-Buildah-Version") != "", nil
}

func engineClient(host string) (*http.Client, string, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, "", err
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		return &http.Client{Transport: tr}, "http://engine", nil
	case "tcp", "http":
		return &http.Client{Transport: &http.Transport{Proxy: nil}}, "http://" + u.Host, nil
	default:
		return nil, "", fmt.Errorf("DOCKER_HOST scheme %q is not supported here; want unix:// or tcp://", u.Scheme)
	}
}

// useEngine points testcontainers-go at e. testcontainers-go reads DOCKER_HOST and
// TESTCONTAINERS_RYUK_DISABLED from the process environment only (and caches them), so they are
// set there. Ryuk, its garbage collector, is disabled under podman: its image cannot be pulled
// on machines without a registry, and local removes its containers itself.
func useEngine(e *engine) {
	// Its own progress lines (emoji and all) would drown local's; its errors still come back
	// as errors.
	tclog.SetDefault(tclog.NewNoopLogger())
	_ = os.Setenv("DOCKER_HOST", e.Host)
	if e.Podman {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// defaultContainersConf is where .ci/podman-setup.sh writes the containers.conf that makes
// podman work on these machines (runc, cgroupfs, rlimits conmon may set).
const defaultContainersConf = "/etc/streammatch/containers.conf"

// toolEnv is the environment of the tools local runs for itself (podman, go build): the real
// environment, plus CONTAINERS_CONF when it is unset and .ci/podman-setup.sh's file exists.
// The app never gets this environment.
func toolEnv() []string {
	env := os.Environ()
	if os.Getenv("CONTAINERS_CONF") == "" {
		if _, err := os.Stat(defaultContainersConf); err == nil {
			env = append(env, "CONTAINERS_CONF="+defaultContainersConf)
		}
	}
	return env
}

// startPodmanService starts `podman system service` on podman's usual socket for this run and
// registers its stop. It is how -run container works on a machine with podman but no socket.
func startPodmanService(ctx context.Context, getenv func(string) string, cl *cleanups) (*engine, error) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		return nil, errors.New("no container engine answers (DOCKER_HOST, /var/run/docker.sock, podman's socket) and podman is not installed")
	}
	sock := "/run/podman/podman.sock"
	if os.Geteuid() != 0 {
		dir := getenv("XDG_RUNTIME_DIR")
		if dir == "" {
			dir = os.TempDir()
		}
		sock = filepath.Join(dir, "podman", "podman.sock")
	}
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return nil, fmt.Errorf("podman socket directory: %w", err)
	}
	_ = os.Remove(sock) // a stale socket file from a service that is gone (it did not answer)
	host := "unix://" + sock
	logf, err := os.CreateTemp("", "local-podman-service-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(podman, "system", "service", "--time=0", host)
	cmd.Env = toolEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start podman system service: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	cl.add("podman service", func(context.Context) error {
		stopProcessGroup(cmd.Process.Pid, exited, 10*time.Second)
		_ = os.Remove(sock)
		logf.Close()
		return os.Remove(logf.Name())
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := pingEngine(ctx, host)
		if err == nil {
			return &engine{Host: host, Podman: true, Started: true}, nil
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("podman system service exited: %s", tailLines(string(out), 5))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("podman system service did not answer on %s within 60s", host)
		}
	}
}

// stopProcessGroup sends SIGTERM to the process group pgid, and SIGKILL if it has not exited
// (exited is closed) within grace.
func stopProcessGroup(pgid int, exited <-chan struct{}, grace time.Duration) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}

// tailLines returns the last n lines of s, joined with " | ", for one-line error messages.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
