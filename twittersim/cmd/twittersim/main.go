// Command twittersim serves the Twitter v1.1 statuses/filter simulator on its own, for running
// streammatch by hand: it accepts only requests signed with the four credentials it reads from
// the same variables the service reads (CONSUMERKEY, CONSUMERSECRETKEY, ACCESSTOKEN,
// ACCESSTOKENSECRET), so one environment file serves both. `go run ./local` starts it in-process;
// this command is for when you run the pieces yourself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/streammatch/streammatch/twittersim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "twittersim: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("twittersim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	rate := fs.Float64("rate", twittersim.DefaultRate, "synthetic tweets per second before track filtering")
	corpus := fs.String("corpus", "", "replay this file instead: a v1.1 search result {\"statuses\":[...]}, a JSON array or NDJSON")
	loop := fs.Bool("loop", true, "replay the corpus again when it ends")
	keepAlive := fs.Duration("keepalive", twittersim.DefaultKeepAlive, "interval of keep-alive newlines")
	notices := fs.Int("notice-every", 20, "send a delete or limit notice after every N tweets (0: none)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: twittersim [flags]\n\nServes POST /1.1/statuses/filter.json. Credentials come from CONSUMERKEY,\nCONSUMERSECRETKEY, ACCESSTOKEN and ACCESSTOKENSECRET.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	creds := twittersim.Credentials{
		ConsumerKey: getenv("CONSUMERKEY"), ConsumerSecret: getenv("CONSUMERSECRETKEY"),
		AccessToken: getenv("ACCESSTOKEN"), AccessTokenSecret: getenv("ACCESSTOKENSECRET"),
	}
	var missing []string
	for name, v := range map[string]string{"CONSUMERKEY": creds.ConsumerKey, "CONSUMERSECRETKEY": creds.ConsumerSecret, "ACCESSTOKEN": creds.AccessToken, "ACCESSTOKENSECRET": creds.AccessTokenSecret} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not set; the simulator accepts only requests signed with these four credentials", strings.Join(missing, ", "))
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	sim, err := twittersim.New(twittersim.Config{Credentials: creds, Rate: *rate, Corpus: *corpus, Loop: *loop, KeepAlive: *keepAlive, NoticeEvery: *notices, Seed: time.Now().UnixNano(), Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sim.Close()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("twittersim listening", "url", "http://"+ln.Addr().String(), "path", twittersim.FilterPath)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
