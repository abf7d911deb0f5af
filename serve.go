package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/streammatch/streammatch/fingerprint"
	"github.com/streammatch/streammatch/store"
	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/mastodon"
	"github.com/streammatch/streammatch/stream/twitter"
	"github.com/streammatch/streammatch/stream/xv2"
	"github.com/streammatch/streammatch/web"
)

// serve runs the service until ctx ends (SIGTERM from ECS, or Ctrl-C), then shuts down in
// dependency order: stop reading the stream, drain and flush the DynamoDB queue, and only then
// stop the HTTP server, so the status page stays up while the queue drains.
func serve(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[serve]  (configuration comes from the environment; see README.md)", stderr)
	if done, err := parseFlags(fs, args, stdout); done {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("serve takes no arguments, got %q", fs.Args())}
	}
	cfg, err := loadConfig(lookupEnv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	started := time.Now()
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))

	matcher, err := stream.NewMatcher(cfg.Track)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("FILTER: %w", err)}
	}
	ddb, err := store.NewClient(ctx, cfg.Region, cfg.EndpointURL)
	if err != nil {
		return fmt.Errorf("dynamodb client: %w", err)
	}
	writer := store.NewWriter(ddb, store.Config{Table: cfg.Table, QueueSize: cfg.QueueSize}, logger)
	source, err := newSource(cfg, logger)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	worker := stream.NewWorker(source, matcher, writer, logger)
	status := newStatus(cfg, started, worker, writer)
	server, err := web.NewServer(web.Config{Addr: cfg.HTTPAddr, Logger: logger}, status)
	if err != nil {
		return fmt.Errorf("web server: %w", err)
	}

	// The fingerprints use a deliberately slow KDF (about 20 ms and 7 MiB each), so they are
	// computed once, in the background, after the server is up: readiness does not wait for
	// them.
	go status.setFingerprints(secretFingerprints(cfg.SecretNames, lookupEnv))

	logger.Info("starting", "version", version, "source", cfg.Source, "table", cfg.Table,
		"region", cfg.Region, "track_terms", len(cfg.Track), "http_addr", cfg.HTTPAddr)

	runCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	writeCtx, stopWriting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriting()
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()

	var g errgroup.Group
	g.Go(func() error {
		defer stopWriting() // the writer drains only after the worker handed over its last match
		status.loopStarted("stream")
		err := worker.Run(runCtx)
		status.loopEnded("stream", err)
		if err != nil {
			stopReading()
			return fmt.Errorf("stream: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		defer stopHTTP() // keep the page up while the queue drains
		status.loopStarted("writer")
		err := writer.Run(writeCtx)
		status.loopEnded("writer", err)
		if err != nil {
			stopReading()
			return fmt.Errorf("writer: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := server.Run(httpCtx); err != nil {
			stopReading()
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	err = g.Wait()
	c := status.Report().Counters
	logger.Info("stopped", "received", c.Received, "matched", c.Matched, "written", c.Written,
		"failed", c.Failed, "skipped", c.Skipped, "uptime_seconds", int(time.Since(started).Seconds()))
	return err
}

// newSource builds the stream source SOURCE names.
func newSource(cfg config, logger *slog.Logger) (stream.Source, error) {
	switch cfg.Source {
	case "x":
		return xv2.NewSource(xv2.Config{
			BaseURL:      cfg.XStreamURL,
			Token:        cfg.XBearerToken,
			Track:        cfg.Track,
			StallTimeout: cfg.StallTimeout,
			Logger:       logger,
		})
	case "mastodon":
		return mastodon.NewSource(mastodon.Config{
			BaseURL:      cfg.MastodonURL,
			Token:        cfg.MastodonToken,
			StallTimeout: cfg.StallTimeout,
			Logger:       logger,
		})
	}
	return twitter.NewSource(twitter.Config{
		BaseURL:      cfg.StreamURL,
		Credentials:  cfg.Credentials,
		Track:        cfg.Track,
		StallTimeout: cfg.StallTimeout,
		Logger:       logger,
	})
}

// secretFingerprints computes the page's fingerprint of each injected secret of the source, one
// at a time.
func secretFingerprints(names []string, lookupEnv func(string) (string, bool)) []web.SecretInfo {
	out := make([]web.SecretInfo, 0, len(names))
	for _, name := range names {
		v, ok := lookupEnv(name)
		info := web.SecretInfo{Name: name, Set: ok && v != ""}
		if info.Set {
			info.Fingerprint = fingerprint.Of(name, v)
			// Each KDF's 7 MiB goes back to the OS before the next one starts, so that the
			// fingerprints add one KDF's memory to the peak RSS, not one per secret: with four
			// secrets the heap would otherwise grow to hold all four before a collection.
			debug.FreeOSMemory()
		}
		out = append(out, info)
	}
	return out
}
