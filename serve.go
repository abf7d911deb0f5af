package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/streammatch/streammatch/fingerprint"
	"github.com/streammatch/streammatch/rotation"
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
	// The drift check reads secret metadata with the task role, like the DynamoDB client: the
	// same default chain, region and endpoint.
	sm, err := rotation.NewClient(ctx, cfg.Region, cfg.EndpointURL)
	if err != nil {
		return fmt.Errorf("secrets manager client: %w", err)
	}
	drift := rotation.NewChecker(sm, rotation.Config{
		Secrets:     cfg.Secrets,
		Interval:    cfg.RotationCheckInterval,
		MetadataURL: cfg.MetadataURL,
		Logger:      logger,
		NoSources:   !cfg.SecretSourcesSet,
	})
	status := newStatus(cfg, started, worker, writer, drift)
	server, err := web.NewServer(web.Config{Addr: cfg.HTTPAddr, Logger: logger}, status)
	if err != nil {
		return fmt.Errorf("web server: %w", err)
	}

	// The fingerprints use a deliberately slow KDF (about 20 ms and 7 MiB each), so they are
	// computed once, in the background, after the server is up: readiness does not wait for
	// them.
	// (A closure: "go f(g())" would run g, the KDFs, before the goroutine starts.)
	go func() {
		status.setFingerprints(secretFingerprints(cfg.Secrets, lookupEnv))
		debug.FreeOSMemory() // the KDFs' memory goes back to the OS once, at the end
	}()

	logger.Info("starting", "version", version, "source", cfg.Source, "table", cfg.Table,
		"region", cfg.Region, "track_terms", len(cfg.Track), "http_addr", cfg.HTTPAddr,
		"rotation_check_interval", cfg.RotationCheckInterval.String(), "rotation_action", cfg.RotationAction)

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
	g.Go(func() error {
		// The check ends with reading: once the stream stops, a rotation changes nothing.
		return drift.Run(runCtx)
	})
	if cfg.RotationAction == "exit" {
		g.Go(func() error {
			select {
			case <-drift.Rotated():
				// Exactly the SIGTERM path: stop reading, drain the writer, exit 0. An ECS
				// service then starts a task, which ECS gives the new secret values.
				logger.Warn("shutting down: a secret was rotated", "rotation_action", cfg.RotationAction)
				stopReading()
			case <-runCtx.Done():
			}
			return nil
		})
	}
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
// at a time. The source is part of the salt (see fingerprint.Of).
func secretFingerprints(secrets []rotation.Secret, lookupEnv func(string) (string, bool)) []web.SecretInfo {
	out := make([]web.SecretInfo, 0, len(secrets))
	for _, sec := range secrets {
		v, ok := lookupEnv(sec.Name)
		info := web.SecretInfo{Name: sec.Name, Source: sec.Source, Set: ok && v != ""}
		if info.Set {
			info.Fingerprint = fingerprint.Of(sec.Name, sec.Source, v)
			// Collect each KDF's 7 MiB before the next one starts, so that the fingerprints
			// add one KDF's memory to the peak RSS, not one per secret: with four secrets the
			// heap would otherwise grow to hold all four before a collection. (runtime.GC and
			// not FreeOSMemory: returning the pages to the OS each time costs page faults.)
			runtime.GC()
		}
		out = append(out, info)
	}
	return out
}
