package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/streammatch/streammatch/secrets"
)

// localImage is the tag of the image local builds. It is kept after the run: it is a build
// cache, and the next run rebuilds only what changed.
const localImage = "localhost/streammatch:local"

// buildImage builds the Dockerfile with podman or docker. With podman the build is offline
// and reproducible, as environment.md describes: the host's module cache is mounted read-only
// and GOPROXY=off, with no network, and base images that exist locally are never pulled.
func buildImage(ctx context.Context, repo string, eng *engine, say func(string, ...any)) (string, error) {
	cli := "docker"
	if _, err := exec.LookPath("podman"); err == nil && (eng.Podman || !haveCommand("docker")) {
		cli = "podman"
	}
	args := []string{"build", "-t", localImage, "--build-arg", "VERSION=local", "-f", "Dockerfile"}
	env := toolEnv()
	if cli == "podman" {
		if modcache, ok := hostModuleCache(ctx, repo); ok {
			args = append(args, "--network", "none", "-v", modcache+":/go/pkg/mod:ro", "--build-arg", "GOPROXY=off")
		}
		if baseImagesPresent(ctx, repo, env) {
			args = append(args, "--pull=never")
		}
	} else {
		env = append(env, "DOCKER_HOST="+eng.Host)
		if gp := os.Getenv("GOPROXY"); gp != "" {
			args = append(args, "--build-arg", "GOPROXY="+gp)
		}
	}
	args = append(args, ".")
	say("building the image %s: %s %s", localImage, cli, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Dir = repo
	cmd.Env = env
	out := &boundedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s build: %v\n%s", cli, err, tailLines(out.String(), 25))
	}
	return localImage, nil
}

func haveCommand(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// hostModuleCache makes sure the module cache has every module the build needs (go mod
// download goes through the host's own GOPROXY) and returns its path.
func hostModuleCache(ctx context.Context, repo string) (string, bool) {
	dl := exec.CommandContext(ctx, "go", "mod", "download")
	dl.Dir = repo
	dl.Env = toolEnv()
	if err := dl.Run(); err != nil {
		return "", false
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// baseImagesPresent reports whether every image the Dockerfile's FROM lines name exists
// locally (stage names excepted).
func baseImagesPresent(ctx context.Context, repo string, env []string) bool {
	f, err := os.Open(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		return false
	}
	defer f.Close()
	stages := map[string]bool{}
	var images []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
			continue
		}
		rest := fields[1:]
		for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			continue
		}
		if !stages[rest[0]] {
			images = append(images, rest[0])
		}
		if len(rest) >= 3 && strings.EqualFold(rest[1], "AS") {
			stages[rest[2]] = true
		}
	}
	for _, img := range images {
		cmd := exec.CommandContext(ctx, "podman", "image", "exists", img)
		cmd.Env = env
		if cmd.Run() != nil {
			return false
		}
	}
	return len(images) > 0
}

// containerSpec is how to run the task's essential container.
type containerSpec struct {
	Image   string
	Env     []secrets.EnvVar
	Def     secrets.ContainerDefinition
	Publish string // host:port the container port is published on (bridge mode)
	Port    int    // the container port of the taskdef's first port mapping
	Host    bool   // host networking instead of a bridge
	CPU     float64
	Memory  int // MiB
}

// containerApp is the app as a container run through testcontainers-go.
type containerApp struct {
	c      *testcontainers.DockerContainer
	pid    int
	exited chan struct{}
	status string
	health []string
	hc     healthTimings
	out    *appOutput
}

// healthTimings are the taskdef's healthCheck settings with ECS's defaults.
type healthTimings struct {
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

func timingsOf(hc *secrets.HealthCheck) healthTimings {
	get := func(p *int, def int) int {
		if p != nil {
			return *p
		}
		return def
	}
	if hc == nil {
		hc = &secrets.HealthCheck{}
	}
	return healthTimings{
		Interval:    time.Duration(get(hc.Interval, secrets.DefaultHealthCheckInterval)) * time.Second,
		Timeout:     time.Duration(get(hc.Timeout, secrets.DefaultHealthCheckTimeout)) * time.Second,
		StartPeriod: time.Duration(get(hc.StartPeriod, secrets.DefaultHealthCheckStartPeriod)) * time.Second,
		Retries:     get(hc.Retries, secrets.DefaultHealthCheckRetries),
	}
}

// healthCommand turns a taskdef healthCheck command into an exec argv: ["CMD", args...] runs
// args; ["CMD-SHELL", "cmd"] runs it with /bin/sh -c, as Docker does.
func healthCommand(hc *secrets.HealthCheck) ([]string, error) {
	if hc == nil || len(hc.Command) == 0 {
		return nil, nil
	}
	switch hc.Command[0] {
	case "CMD":
		if len(hc.Command) < 2 {
			return nil, errors.New("healthCheck command [\"CMD\"] names no program")
		}
		return hc.Command[1:], nil
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(hc.Command[1:], " ")}, nil
	default:
		return nil, fmt.Errorf("healthCheck command must start with CMD or CMD-SHELL, got %q", hc.Command[0])
	}
}

// startContainer runs the container as ECS would run it on Fargate: the resolved environment,
// the taskdef's user, read-only root filesystem, capabilities, init process, stop timeout and
// CPU and memory limits, and the port mapping on the published address.
func startContainer(ctx context.Context, spec containerSpec, eng *engine, out *appOutput) (*containerApp, error) {
	useEngine(eng)
	health, err := healthCommand(spec.Def.HealthCheck)
	if err != nil {
		return nil, err
	}
	env := make(map[string]string, len(spec.Env))
	for _, e := range spec.Env {
		env[e.Name] = e.Value
	}
	stopTimeout := secrets.DefaultStopTimeout
	if spec.Def.StopTimeout != nil {
		stopTimeout = *spec.Def.StopTimeout
	}
	port := network.MustParsePort(strconv.Itoa(spec.Port) + "/tcp")
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(env),
		testcontainers.WithLogger(tclog.NewNoopLogger()),
		testcontainers.WithLogConsumerConfig(&testcontainers.LogConsumerConfig{
			Consumers: []testcontainers.LogConsumer{logConsumer{out}},
		}),
		testcontainers.WithConfigModifier(func(c *container.Config) {
			c.User = spec.Def.User
			c.StopTimeout = &stopTimeout
			c.Labels = map[string]string{"com.amazonaws.ecs.container-name": spec.Def.Name, "streammatch.local": "true"}
		}),
		testcontainers.WithHostConfigModifier(func(h *container.HostConfig) {
			h.ReadonlyRootfs = spec.Def.ReadonlyRootFilesystem != nil && *spec.Def.ReadonlyRootFilesystem
			h.Privileged = spec.Def.Privileged != nil && *spec.Def.Privileged
			if lp := spec.Def.LinuxParameters; lp != nil {
				if lp.Capabilities != nil {
					h.CapAdd = lp.Capabilities.Add
					h.CapDrop = lp.Capabilities.Drop
				}
				h.Init = lp.InitProcessEnabled
			}
			if spec.Memory > 0 {
				h.Memory = int64(spec.Memory) << 20
			}
			if spec.CPU > 0 {
				h.NanoCPUs = int64(spec.CPU * 1e9)
			}
			if spec.Host {
				h.NetworkMode = "host"
				return
			}
			host, hostPort, _ := net.SplitHostPort(spec.Publish)
			ip, _ := netip.ParseAddr(host)
			h.PortBindings = network.PortMap{port: {{HostIP: ip, HostPort: hostPort}}}
		}),
	}
	if !spec.Host {
		opts = append(opts, testcontainers.WithExposedPorts(port.String()))
	}
	c, err := testcontainers.Run(ctx, spec.Image, opts...)
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("run %s on %s: %w", spec.Image, eng, err)
	}
	app := &containerApp{c: c, exited: make(chan struct{}), health: health, hc: timingsOf(spec.Def.HealthCheck), out: out}
	if info, err := c.Inspect(ctx); err == nil && info.State != nil {
		app.pid = info.State.Pid
	}
	go app.watch()
	return app, nil
}

// logConsumer feeds the container's log into the app output.
type logConsumer struct{ out *appOutput }

func (l logConsumer) Accept(log testcontainers.Log) {
	stream := "stdout"
	if log.LogType == testcontainers.StderrLog {
		stream = "stderr"
	}
	_, _ = l.out.writer(stream).Write(log.Content)
}

// watch closes exited when the container stops running.
func (a *containerApp) watch() {
	for {
		st, err := a.c.State(context.Background())
		if err != nil || st == nil || (!st.Running && st.Status != "created") {
			switch {
			case err != nil:
				a.status = "state unknown: " + err.Error()
			case st == nil:
				a.status = "state unknown"
			default:
				a.status = fmt.Sprintf("exit status %d", st.ExitCode)
				if st.OOMKilled {
					a.status += " (OOM-killed)"
				}
			}
			close(a.exited)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (a *containerApp) Describe() string {
	id := a.c.GetContainerID()
	if len(id) > 12 {
		id = id[:12]
	}
	return fmt.Sprintf("container %s, host pid %d", id, a.pid)
}

func (a *containerApp) PID() int { return a.pid }

func (a *containerApp) ID() string { return a.c.GetContainerID() }

func (a *containerApp) Exited() <-chan struct{} { return a.exited }

func (a *containerApp) ExitStatus() string { return a.status }

// WaitHealthy runs the taskdef's health check command inside the container (as ECS does)
// until it exits 0. It tries every second rather than every interval, so that the page URL
// appears as soon as it works; the start period and retries bound how long it may take.
func (a *containerApp) WaitHealthy(ctx context.Context) error {
	if len(a.health) == 0 {
		return nil // no health check: ECS reports UNKNOWN and carries on
	}
	limit := a.hc.StartPeriod + time.Duration(a.hc.Retries)*a.hc.Interval
	if limit < time.Minute {
		limit = time.Minute
	}
	deadline := time.Now().Add(limit)
	var last string
	for {
		code, output, err := a.exec(ctx)
		if err == nil && code == 0 {
			return nil
		}
		last = fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(output))
		if err != nil {
			last = err.Error()
		}
		select {
		case <-a.exited:
			return fmt.Errorf("the container exited before it was healthy (%s)", a.status)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the health check %q did not pass within %s; last: %s", strings.Join(a.health, " "), limit, last)
		}
	}
}

func (a *containerApp) exec(ctx context.Context) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.hc.Timeout)
	defer cancel()
	code, r, err := a.c.Exec(ctx, a.health)
	if err != nil {
		return -1, "", err
	}
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	return code, string(b), nil
}

// Stop stops the container with SIGTERM and its stop timeout, reads its whole log back for the
// final counters, and removes it.
func (a *containerApp) Stop(ctx context.Context, timeout time.Duration) error {
	err := a.c.Stop(ctx, &timeout)
	if rc, lerr := a.c.Logs(ctx); lerr == nil {
		b, _ := io.ReadAll(io.LimitReader(rc, 64<<20))
		rc.Close()
		a.out.scanAll(b)
	}
	<-a.exited
	if terr := a.c.Terminate(ctx); terr != nil && err == nil {
		err = terr
	}
	return err
}

var _ testcontainers.LogConsumer = logConsumer{}
