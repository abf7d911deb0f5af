package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/streammatch/streammatch/fingerprint"
	"github.com/streammatch/streammatch/secrets/valuefrom"
)

// maxSecretBytes is the largest value Secrets Manager stores (64 KiB); fingerprint reads one
// byte more to tell an oversized input from a full one.
const maxSecretBytes = 64 << 10

// healthcheckTimeout bounds the whole health check. ECS's default timeout is 5 s; answering
// within 2 s leaves room for a slow start of the process itself.
const healthcheckTimeout = 2 * time.Second

// newFlagSet returns a flag set whose -h prints the command's usage to stdout and whose errors
// go to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: streammatch %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; -h prints usage on stdout and ends the command successfully.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (done bool, err error) {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return true, nil
		}
	}
	if err := fs.Parse(args); err != nil {
		return true, &exitError{code: 2, err: err}
	}
	return false, nil
}

// healthcheck asks the running service's /healthz and exits 0 when it answers 200. It is the
// container's health check: distroless images have no shell or curl, so the binary checks itself.
func healthcheck(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("healthcheck", "healthcheck [-url URL]", stderr)
	target := fs.String("url", "", "URL to check (default http://127.0.0.1:<port of HTTP_ADDR>/healthz)")
	if done, err := parseFlags(fs, args, stdout); done {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("healthcheck takes no arguments, got %q", fs.Args())}
	}
	if *target == "" {
		addr, _ := lookupEnv("HTTP_ADDR")
		u, err := healthURL(addr)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		*target = u
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("healthcheck -url %q: %w", *target, err)}
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("unhealthy: %w", err)}
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Detail string `json:"detail"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: 1, err: fmt.Errorf("unhealthy: %s answered %d %s %s", *target, resp.StatusCode, body.Status, body.Detail)}
	}
	fmt.Fprintf(stdout, "%s %s\n", strings.TrimSpace(body.Status+" "+body.Detail), *target)
	return nil
}

// healthURL turns HTTP_ADDR (":8080", "0.0.0.0:8080", "127.0.0.1:0") into the loopback URL of
// /healthz: the check runs inside the container, next to the server.
func healthURL(httpAddr string) (string, error) {
	if strings.TrimSpace(httpAddr) == "" {
		httpAddr = ":8080"
	}
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("HTTP_ADDR %q names no fixed port; pass -url", httpAddr)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz", nil
}

// fingerprintCmd prints the fingerprint of the secret value read on stdin, exactly as the status
// page shows it for NAME injected from -source (the secret's valueFrom, which the page and
// /api/status show beside the fingerprint), so an operator can check which value a task
// received without the page ever showing it. One trailing newline is removed, as `echo` and
// here-strings add one.
func fingerprintCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("fingerprint", "fingerprint [-source VALUEFROM] NAME  (the value is read on stdin, never from the command line)", stderr)
	source := fs.String("source", "", "the secret's valueFrom, as the status page shows it beside the fingerprint; part of the salt (empty when the page shows none)")
	if done, err := parseFlags(fs, args, stdout); done {
		return err
	}
	// Allow the flag after the name too ("fingerprint NAME -source ARN"): the flag package
	// stops at the first argument that is not a flag.
	var names []string
	for fs.NArg() > 0 {
		names = append(names, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if len(names) != 1 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("fingerprint takes exactly one argument: the variable name, e.g. CONSUMERKEY")}
	}
	name := names[0]
	if *source != "" {
		// A typo in the source would silently give another fingerprint; the grammar check
		// catches most. The source is a reference the operator typed, not a secret.
		if _, err := valuefrom.Parse(*source); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("-source: %w", err)}
		}
	}
	value, err := io.ReadAll(io.LimitReader(stdin, maxSecretBytes+1))
	if err != nil {
		return fmt.Errorf("read value from stdin: %w", err)
	}
	if len(value) > maxSecretBytes {
		return &exitError{code: 2, err: fmt.Errorf("value on stdin is over %d bytes, the largest secret ECS injects", maxSecretBytes)}
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(value), "\n"), "\r")
	if v == "" {
		return &exitError{code: 2, err: errors.New("no value on stdin; pipe the secret value in, e.g. from a file: streammatch fingerprint -source VALUEFROM CONSUMERKEY < value.txt")}
	}
	fmt.Fprintln(stdout, fingerprint.Of(name, *source, v))
	return nil
}

// printVersion prints the build's version and toolchain.
func printVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version", stderr)
	if done, err := parseFlags(fs, args, stdout); done {
		return err
	}
	revision := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = " " + s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "streammatch %s%s %s %s/%s\n", version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
