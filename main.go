// Command streammatch is the Fargate task: it reads a filtered stream with credentials that ECS
// injects from Secrets Manager, matches messages with Twitter's track semantics, writes matches
// to DynamoDB with the task role, and serves a status page that proves the secrets arrived
// without revealing them.
//
// main only wires: run reads the configuration, builds the pieces and runs them until the
// context ends. Tests call run directly with a fake environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit status through run's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode maps run's error to a process exit status, printing it once: 0 for success, 2 for
// bad usage or configuration, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "streammatch: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "streammatch: %v\n", err)
	return 1
}

const usage = `streammatch reads a filtered stream, matches it with Twitter track semantics and writes
matches to DynamoDB. Configuration comes from the environment (see README.md).

Usage:
  streammatch [serve]              run the service (the default)
  streammatch healthcheck [-url U] exit 0 when /healthz answers 200 within 2s (container health check)
  streammatch fingerprint [-source VALUEFROM] NAME
                                   read a secret value on stdin, print the fingerprint the page shows
                                   for NAME injected from VALUEFROM (the source the page shows)
  streammatch version              print the version
  streammatch help                 print this help; every command also takes -h
`

// run is the whole program. lookupEnv replaces os.LookupEnv so that tests never touch the real
// environment; stdin, stdout and stderr likewise.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, lookupEnv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, lookupEnv, stdout, stderr)
	case "fingerprint":
		return fingerprintCmd(rest, stdin, stdout, stderr)
	case "version":
		return printVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q; want serve, healthcheck, fingerprint, version or help", cmd)}
	}
}
