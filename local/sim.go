package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/streammatch/streammatch/twittersim"
)

// controlPrefix is where the simulator's fault switches live, beside the stream endpoint.
const controlPrefix = "/_local/"

// streamSimulator is the stream of the run's -source, served on this machine: the Twitter
// v1.1 simulator (simulator, below) or the X or Mastodon one (bearerSimulator).
type streamSimulator interface {
	// URL is the base URL the app's stream variable gets (TWITTER_STREAM_URL, X_STREAM_URL,
	// MASTODON_URL).
	URL() string
	// describe says what it serves, for local's progress line.
	describe() string
	// rotate makes new connections need the secret's new values; open streams stay open.
	rotate(creds secretValues) error
	// Run serves until ctx ends.
	Run(ctx context.Context) error
}

var (
	_ streamSimulator = (*simulator)(nil)
	_ streamSimulator = (*bearerSimulator)(nil)
)

// streamURLVars are the app's variables that name each source's stream base URL.
var streamURLVars = map[string]string{"twitter": "TWITTER_STREAM_URL", "x": "X_STREAM_URL", "mastodon": "MASTODON_URL"}

// newStreamSimulator starts the simulator of o.Source for creds, listening on host:0.
func newStreamSimulator(o options, creds secretValues, host string) (streamSimulator, error) {
	if o.Source == "twitter" {
		return startSimulator(o, creds, host)
	}
	return newBearerSimulator(o, creds, host)
}

// simulator is the in-process statuses/filter simulator plus its control endpoint.
type simulator struct {
	cfg twittersim.Config
	ln  net.Listener

	mu      sync.Mutex
	sim     *twittersim.Server   // accepts the secret's current values
	retired []*twittersim.Server // earlier values' servers, which keep their open streams
}

// startSimulator builds the simulator for creds and listens on host:0.
func startSimulator(o options, creds secretValues, host string) (*simulator, error) {
	rate := o.Rate
	if rate == 0 {
		rate = -1 // twittersim reads 0 as its default rate; -rate 0 means no tweets
	}
	cfg := twittersim.Config{
		Credentials: simCredentials(creds),
		Rate:        rate,
		Corpus:      o.Corpus,
		Loop:        o.Loop,
		KeepAlive:   o.KeepAlive,
		NoticeEvery: o.NoticeEvery,
		Seed:        time.Now().UnixNano(),
		Logger:      slog.New(slog.DiscardHandler),
	}
	sim, err := twittersim.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("stream simulator: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		sim.Close()
		return nil, fmt.Errorf("stream simulator: listen on %s: %w", host, err)
	}
	return &simulator{cfg: cfg, sim: sim, ln: ln}, nil
}

func simCredentials(creds secretValues) twittersim.Credentials {
	return twittersim.Credentials{
		ConsumerKey: creds["CONSUMERKEY"], ConsumerSecret: creds["CONSUMERSECRETKEY"],
		AccessToken: creds["ACCESSTOKEN"], AccessTokenSecret: creds["ACCESSTOKENSECRET"],
	}
}

// rotate makes new connections need creds, as regenerating an app's keys at Twitter does:
// a request signed with the old values is rejected with 401 from now on. Streams that are
// already open stay open on the old values' server until they end, as Twitter's do.
func (s *simulator) rotate(creds secretValues) error {
	cfg := s.cfg
	cfg.Credentials = simCredentials(creds)
	cfg.Seed = time.Now().UnixNano()
	sim, err := twittersim.New(cfg)
	if err != nil {
		return fmt.Errorf("stream simulator: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = append(s.retired, s.sim)
	s.sim = sim
	return nil
}

// current is the server that takes new requests and the fault controls.
func (s *simulator) current() *twittersim.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sim
}

// closeAll ends every stream of every server.
func (s *simulator) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.retired {
		r.Close()
	}
	s.sim.Close()
}

// URL is the simulator's base URL (TWITTER_STREAM_URL) as seen from host.
func (s *simulator) URL() string { return "http://" + s.ln.Addr().String() }

func (s *simulator) describe() string {
	return "Twitter v1.1 statuses/filter; faults: POST " + s.URL() + controlPrefix + "fail?status=503, see -h"
}

// Run serves until ctx ends.
func (s *simulator) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle(twittersim.FilterPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.current().ServeHTTP(w, r) }))
	mux.HandleFunc("GET "+controlPrefix+"status", func(w http.ResponseWriter, r *http.Request) {
		sim := s.current()
		writeControl(w, http.StatusOK, map[string]any{"stats": sim.Stats(), "faults": sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"fail", func(w http.ResponseWriter, r *http.Request) {
		status, err1 := intParam(r, "status", 503)
		times, err2 := intParam(r, "times", 1)
		if err := errors.Join(err1, err2); err != nil || status < 400 || status > 599 || times < 1 {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "want status=400..599 and times>=1"})
			return
		}
		sim := s.current()
		sim.FailNext(status, times)
		writeControl(w, http.StatusOK, map[string]any{"faults": sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"disconnect", func(w http.ResponseWriter, r *http.Request) {
		after, err := intParam(r, "after", 0)
		if err != nil || after < 0 {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "want after>=0 (messages) and optionally midline=1"})
			return
		}
		sim := s.current()
		sim.DisconnectAfter(after, r.URL.Query().Get("midline") == "1")
		writeControl(w, http.StatusOK, map[string]any{"faults": sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"stall", func(w http.ResponseWriter, r *http.Request) {
		after, err := intParam(r, "after", 0)
		if err != nil || after < 0 {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "want after>=0 (messages)"})
			return
		}
		sim := s.current()
		sim.Stall(after)
		writeControl(w, http.StatusOK, map[string]any{"faults": sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"clear", func(w http.ResponseWriter, r *http.Request) {
		sim := s.current()
		sim.ClearFaults()
		writeControl(w, http.StatusOK, map[string]any{"faults": sim.Faults()})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeControl(w, http.StatusNotFound, map[string]string{"error": "not found; the stream is POST " + twittersim.FilterPath + ", the controls are under " + controlPrefix})
	})
	return serveSimulator(ctx, s.ln, mux, s.closeAll)
}

// serveSimulator serves handler on ln until ctx ends. endStreams closes the open streams first,
// so that Shutdown does not wait for them; it is also called when serving fails.
func serveSimulator(ctx context.Context, ln net.Listener, handler http.Handler, endStreams func()) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		endStreams()
		return fmt.Errorf("stream simulator: %w", err)
	case <-ctx.Done():
	}
	endStreams()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	<-errc
	return nil
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: not a number", name)
	}
	return n, nil
}

func writeControl(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
