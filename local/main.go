// Command local runs the whole streammatch Fargate task on a developer's machine with one
// command, `go run ./local`, doing what ECS does in AWS: it brings up an AWS emulator,
// provisions the secret, the table and both roles in it, resolves the task definition's secrets
// with the execution role exactly as the ECS agent does, serves the task role's credentials and
// the task metadata from the agent's endpoints, starts a Twitter stream simulator that verifies
// the OAuth signature against the injected secrets, and starts the app as a process or as a
// container. See README-local.md and `go run ./local -h`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitError carries an exit status through run's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err once and maps it to an exit status: 0 for success and -h, 2 for bad
// flags, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(stderr, "local: %v\n", err)
	return code
}
