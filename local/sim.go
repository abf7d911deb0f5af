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
	"time"

	"github.com/streammatch/streammatch/twittersim"
)

// controlPrefix is where the simulator's fault switches live, beside the stream endpoint.
const controlPrefix = "/_local/"

// simulator is the in-process statuses/filter simulator plus its control endpoint.
type simulator struct {
	sim *twittersim.Server
	ln  net.Listener
}

// startSimulator builds the simulator for creds and listens on host:0.
func startSimulator(o options, creds twitterCredentials, host string) (*simulator, error) {
	rate := o.Rate
	if rate == 0 {
		rate = -1 // twittersim reads 0 as its default rate; -rate 0 means no tweets
	}
	sim, err := twittersim.New(twittersim.Config{
		Credentials: twittersim.Credentials{
			ConsumerKey: creds["CONSUMERKEY"], ConsumerSecret: creds["CONSUMERSECRETKEY"],
			AccessToken: creds["ACCESSTOKEN"], AccessTokenSecret: creds["ACCESSTOKENSECRET"],
		},
		Rate:        rate,
		Corpus:      o.Corpus,
		Loop:        o.Loop,
		KeepAlive:   o.KeepAlive,
		NoticeEvery: o.NoticeEvery,
		Seed:        time.Now().UnixNano(),
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("stream simulator: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		sim.Close()
		return nil, fmt.Errorf("stream simulator: listen on %s: %w", host, err)
	}
	return &simulator{sim: sim, ln: ln}, nil
}

// URL is the simulator's base URL (TWITTER_STREAM_URL) as seen from host.
func (s *simulator) URL() string { return "http://" + s.ln.Addr().String() }

// Run serves until ctx ends.
func (s *simulator) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle(twittersim.FilterPath, s.sim)
	mux.HandleFunc("GET "+controlPrefix+"status", func(w http.ResponseWriter, r *http.Request) {
		writeControl(w, http.StatusOK, map[string]any{"stats": s.sim.Stats(), "faults": s.sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"fail", func(w http.ResponseWriter, r *http.Request) {
		status, err1 := intParam(r, "status", 503)
		times, err2 := intParam(r, "times", 1)
		if err := errors.Join(err1, err2); err != nil || status < 400 || status > 599 || times < 1 {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "want status=400..599 and times>=1"})
			return
		}
		s.sim.FailNext(status, times)
		writeControl(w, http.StatusOK, map[string]any{"faults": s.sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"disconnect", func(w http.ResponseWriter, r *http.Request) {
		after, err := intParam(r, "after", 0)
		if err != nil || after < 0 {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "want after>=0 (messages) and optionally midline=1"})
			return
		}
		s.sim.DisconnectAfter(after, r.URL.Query().Get("midline") == "1")
		writeControl(w, http.StatusOK, map[string]any{"faults": s.sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"stall", func(w http.ResponseWriter, r *http.Request) {
		after, err := intParam(r, "after", 0)
		if err != nil || after < 0 {
			writeControl(w, http.StatusBadRequest, map[string]string{"error": "want after>=0 (messages)"})
			return
		}
		s.sim.Stall(after)
		writeControl(w, http.StatusOK, map[string]any{"faults": s.sim.Faults()})
	})
	mux.HandleFunc("POST "+controlPrefix+"clear", func(w http.ResponseWriter, r *http.Request) {
		s.sim.ClearFaults()
		writeControl(w, http.StatusOK, map[string]any{"faults": s.sim.Faults()})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeControl(w, http.StatusNotFound, map[string]string{"error": "not found; the stream is POST " + twittersim.FilterPath + ", the controls are under " + controlPrefix})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		s.sim.Close()
		return fmt.Errorf("stream simulator: %w", err)
	case <-ctx.Done():
	}
	s.sim.Close() // ends the streams, so that Shutdown does not wait for them
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
