package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/streammatch/streammatch/fingerprint"
	"github.com/streammatch/streammatch/rotation"
	"github.com/streammatch/streammatch/store"
	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/web"
)

// writerDegradedFor is how long after a DynamoDB error the service reports itself degraded.
const writerDegradedFor = time.Minute

// status aggregates the worker's, the writer's and the drift check's state for the web server
// (web.Status).
type status struct {
	cfg     config
	started time.Time
	worker  *stream.Worker
	writer  *store.Writer
	drift   *rotation.Checker

	mu      sync.Mutex
	secrets []web.SecretInfo
	loops   map[string]string // loop name -> "" while running, else why it ended
}

var _ web.Status = (*status)(nil)

func newStatus(cfg config, started time.Time, worker *stream.Worker, writer *store.Writer, drift *rotation.Checker) *status {
	s := &status{cfg: cfg, started: started, worker: worker, writer: writer, drift: drift, loops: map[string]string{}}
	// Until the fingerprints are computed the page lists the source's secret names and
	// sources, set, without a fingerprint.
	for _, sec := range cfg.Secrets {
		s.secrets = append(s.secrets, web.SecretInfo{Name: sec.Name, Source: sec.Source, Set: true})
	}
	return s
}

func (s *status) setFingerprints(infos []web.SecretInfo) {
	s.mu.Lock()
	s.secrets = infos
	s.mu.Unlock()
}

func (s *status) loopStarted(name string) {
	s.mu.Lock()
	s.loops[name] = ""
	s.mu.Unlock()
}

func (s *status) loopEnded(name string, err error) {
	why := "stopped"
	if err != nil {
		why = err.Error()
	}
	s.mu.Lock()
	s.loops[name] = why
	s.mu.Unlock()
}

// Report implements web.Status.
func (s *status) Report() web.Report {
	wc := s.worker.Counters()
	ws := s.writer.Stats()
	src := s.worker.Source().Status()

	failedBy := make(map[string]uint64, len(ws.FailedByReason)+1)
	for k, v := range ws.FailedByReason {
		failedBy[k] = v
	}
	if wc.HandoffFailed > 0 {
		failedBy["not_queued"] += wc.HandoffFailed
	}
	notices := map[string]uint64{}
	for reason, n := range wc.SkippedByReason {
		if kind, ok := strings.CutPrefix(reason, "notice_"); ok {
			notices[kind] = n
		}
	}

	s.mu.Lock()
	secretsCopy := append([]web.SecretInfo(nil), s.secrets...)
	health := s.healthLocked(src, ws)
	s.mu.Unlock()
	s.addDrift(secretsCopy)

	return web.Report{
		Version:       version,
		UptimeSeconds: time.Since(s.started).Seconds(),
		Health:        health,
		Stream:        src,
		Counters: web.Counters{
			Received:        wc.Received,
			Matched:         wc.Matched,
			Unmatched:       wc.Unmatched,
			Written:         ws.Written,
			Failed:          ws.Failed + wc.HandoffFailed,
			Skipped:         wc.Skipped,
			SkippedByReason: wc.SkippedByReason,
			FailedByReason:  failedBy,
			Notices:         notices,
			LimitMissed:     wc.LimitMissed,
		},
		QueueDepth:        ws.Queued,
		Secrets:           secretsCopy,
		FingerprintFormat: fingerprint.Version,
		Track:             s.cfg.Track,
		Table:             s.cfg.Table,
		Region:            s.cfg.Region,
	}
}

// addDrift fills each secret's drift state from the checker. It does not touch health: a
// rotated secret is a reason to restart the task, not a failure of this one, so /healthz stays
// 200 and ECS does not replace the task behind the operator's back.
func (s *status) addDrift(infos []web.SecretInfo) {
	byName := map[string]rotation.Status{}
	for _, st := range s.drift.Statuses() {
		byName[st.Name] = st
	}
	for i := range infos {
		st, ok := byName[infos[i].Name]
		if !ok {
			infos[i].State = web.SecretUnknown
			continue
		}
		infos[i].Source = st.Source
		infos[i].State = web.SecretState(st.State)
		infos[i].Detail = st.Detail
		infos[i].RotatedAt = st.RotatedAt
		infos[i].TaskStartedAt = st.TaskStartedAt
		infos[i].CheckedAt = st.CheckedAt
	}
}

// healthLocked decides /healthz. A loop that ended while the process still serves is unhealthy:
// ECS should replace the task. Rejected stream credentials or failing DynamoDB writes are
// degraded, not dead: restarting the task would not fix them and would only loop.
func (s *status) healthLocked(src stream.SourceStatus, ws store.Stats) web.Health {
	for _, name := range []string{"stream", "writer"} {
		if why, ok := s.loops[name]; ok && why != "" {
			return web.Health{Status: "unhealthy", Detail: fmt.Sprintf("%s loop ended: %s", name, why)}
		}
	}
	switch {
	case src.State == stream.StateRejected:
		return web.Health{Status: "degraded", Detail: "stream: " + src.LastError}
	case ws.LastError != "" && time.Since(ws.LastErrorAt) < writerDegradedFor:
		return web.Health{Status: "degraded", Detail: "dynamodb: " + ws.LastError}
	}
	return web.Health{Status: "ok"}
}

// RecentMatches implements web.Status.
func (s *status) RecentMatches(limit int) []web.MatchView {
	recent := s.worker.Recent(limit)
	out := make([]web.MatchView, 0, len(recent))
	for _, m := range recent {
		out = append(out, web.MatchView{
			ID:        m.Message.ID,
			User:      m.Message.User,
			Text:      m.Message.Text,
			Lang:      m.Message.Lang,
			Source:    m.Message.Source,
			CreatedAt: m.Message.CreatedAt,
			Terms:     m.Terms,
		})
	}
	return out
}
