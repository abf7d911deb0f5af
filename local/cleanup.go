package main

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// cleanups is the teardown list: everything local starts registers how to stop it, and run
// calls them in reverse order (the app before the endpoints it uses, the emulator last).
type cleanups struct {
	mu    sync.Mutex
	steps []cleanupStep
}

type cleanupStep struct {
	what string
	fn   func(context.Context) error
}

func (c *cleanups) add(what string, fn func(context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, cleanupStep{what, fn})
}

// run calls every step, newest first, and reports failures on w without stopping.
func (c *cleanups) run(ctx context.Context, w io.Writer) {
	c.mu.Lock()
	steps := c.steps
	c.steps = nil
	c.mu.Unlock()
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].fn(ctx); err != nil {
			fmt.Fprintf(w, "local: teardown of %s: %v\n", steps[i].what, err)
		}
	}
}
