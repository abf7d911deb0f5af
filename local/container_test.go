package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// baseImages are the images the Dockerfile builds from; .ci/base-images.sh assembles them
// locally on machines without a registry.
var baseImages = []string{"docker.io/library/golang:1.26-bookworm", "gcr.io/distroless/static-debian12:nonroot"}

// requirePodman skips (or, in CI, fails) unless podman and the base images are there.
func requirePodman(t *testing.T) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have podman set up (.ci/podman-setup.sh) and the base images (.ci/base-images.sh): "+format, args...)
		}
		t.Skipf("container mode needs podman (.ci/podman-setup.sh) and the base images (.ci/base-images.sh): "+format, args...)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		missing("podman is not on PATH")
	}
	for _, img := range baseImages {
		cmd := exec.Command("podman", "image", "exists", img)
		cmd.Env = toolEnv()
		if err := cmd.Run(); err != nil {
			missing("image %s is not present (%v)", img, err)
		}
	}
}

func TestLocal_ContainerModeEndToEnd(t *testing.T) {
	requireMoto(t)
	requirePodman(t)
	r := startLocal(t, "-aws", "moto", "-run", "container", "-addr", "127.0.0.1:0", "-secrets", writeSecretsFile(t),
		"-filter", testFilter, "-rate", "40", "-keepalive", "1s")
	checkRunningTask(t, r)

	out := r.stdout.String()
	for _, want := range []string{"building the image " + localImage, "container healthy", "app started: container "} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if err := r.stop(); err != nil {
		t.Errorf("run after Ctrl-C = %v, want nil", err)
	}
	checkSummaryAndTeardown(t, r)
	r.assertNoLeak(t)

	// Teardown removed the container and, if local added it, the link-local address.
	ps := exec.Command("podman", "ps", "-a", "--filter", "label=streammatch.local=true", "--format", "{{.ID}}")
	ps.Env = toolEnv()
	if b, err := ps.Output(); err == nil && strings.TrimSpace(string(b)) != "" {
		t.Errorf("containers left after teardown: %s", b)
	}
}

func TestLocal_LocalStackSkipsWithAReason(t *testing.T) {
	eng := findEngine(context.Background(), os.Getenv)
	if eng == nil {
		t.Skip("LocalStack needs a container engine, and none answers (DOCKER_HOST, /var/run/docker.sock, podman's socket); start one (e.g. `source .ci/podman-setup.sh --socket`) to run this test")
	}
	cli := "docker"
	if eng.Podman {
		cli = "podman"
	}
	inspect := exec.Command(cli, "image", "inspect", defaultLocalStackImage)
	inspect.Env = append(toolEnv(), "DOCKER_HOST="+eng.Host)
	if err := inspect.Run(); err != nil {
		t.Skipf("the image %s is not present on %s and cannot be pulled here (no registry): %v", defaultLocalStackImage, eng, err)
	}
	r := startLocal(t, "-aws", "localstack", "-run", "process", "-addr", "127.0.0.1:0", "-secrets", writeSecretsFile(t),
		"-filter", testFilter, "-rate", "40", "-for", "10s")
	if err := r.wait(5 * time.Minute); err != nil {
		t.Fatalf("run with LocalStack: %v\nstdout:\n%s\nstderr:\n%s", err, tail(r.stdout.String(), 3000), r.stderr.String())
	}
	checkSummaryAndTeardown(t, r)
	r.assertNoLeak(t)
}
