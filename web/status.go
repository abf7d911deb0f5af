package web

import (
	"time"

	"github.com/streammatch/streammatch/stream"
)

// Status is what the server reads. It is declared here, where it is used; main implements it by
// aggregating the stream worker and the store writer. Both methods are called from request
// goroutines, concurrently, and must be cheap: they are asked on every page view and health check.
type Status interface {
	// Report returns a snapshot of the whole process.
	Report() Report
	// RecentMatches returns at most limit matches, newest first.
	RecentMatches(limit int) []MatchView
}

// HealthStatus is the coarse health of the process, as /healthz reports it.
type HealthStatus string

// The health levels. Degraded still answers 200 on /healthz: a rejected stream credential or a
// throttled table is an operator's problem, and a restart would not fix it, so ECS must not
// replace the task in a loop. Only unhealthy (e.g. the writer can no longer accept work) answers
// 503.
const (
	HealthOK        HealthStatus = "ok"
	HealthDegraded  HealthStatus = "degraded"
	HealthUnhealthy HealthStatus = "unhealthy"
)

// Health is the process's health with a one-line, human-readable reason.
type Health struct {
	Status HealthStatus `json:"status"`
	// Detail says why the status is not ok, e.g. "stream credentials rejected (401)". It never
	// holds a secret value.
	Detail string `json:"detail"`
}

// Report is the snapshot behind / and /api/status. Its JSON shape is a contract with operators'
// scripts: add fields, do not rename them.
type Report struct {
	Version       string              `json:"version"`
	UptimeSeconds float64             `json:"uptime_seconds"`
	Health        Health              `json:"health"`
	Stream        stream.SourceStatus `json:"stream"`
	Counters      Counters            `json:"counters"`
	// QueueDepth is how many matches wait for the store writer.
	QueueDepth int          `json:"queue_depth"`
	Secrets    []SecretInfo `json:"secrets"`
	// FingerprintFormat names the fingerprints' format version, e.g. "fp3" (each fingerprint
	// also starts with it), so that an operator knows which `streammatch fingerprint` to use.
	FingerprintFormat string `json:"fingerprint_format"`
	// Track is the configured track phrases, as given.
	Track  []string `json:"track"`
	Table  string   `json:"table"`
	Region string   `json:"region"`
}

// Counters count the records taken off the stream (received, split into matched, unmatched and
// skipped; notices are counted apart) and what became of the matches handed to the store.
type Counters struct {
	Received  uint64 `json:"received"`
	Matched   uint64 `json:"matched"`
	Unmatched uint64 `json:"unmatched"`
	Written   uint64 `json:"written"`
	Failed    uint64 `json:"failed"`
	Skipped   uint64 `json:"skipped"`
	// SkippedByReason and FailedByReason break Skipped and Failed down by snake_case reason
	// ("invalid_json", "throttled", ...).
	SkippedByReason map[string]uint64 `json:"skipped_by_reason"`
	FailedByReason  map[string]uint64 `json:"failed_by_reason"`
	// Notices counts non-tweet messages by type ("delete", "limit", ...).
	Notices map[string]uint64 `json:"notices"`
	// LimitMissed is the undelivered count from the latest limit notices: tweets that matched
	// but that Twitter did not send because the stream was over its share of the firehose. It is
	// an int64 like stream.Record.LimitMissed.
	LimitMissed int64 `json:"limit_missed"`
}

// SecretState is what the drift check knows about one injected secret.
type SecretState string

// The secret states. A rotated secret still answers 200 on /healthz: the task runs fine on the
// value it has, and whether to replace it is the operator's call (or ROTATION_ACTION=exit's).
const (
	// SecretCurrent: the version the reference resolves to existed before the task started.
	SecretCurrent SecretState = "current"
	// SecretRotated: the reference now resolves to a version the task cannot hold.
	SecretRotated SecretState = "rotated"
	// SecretUnknown: the check cannot tell; Detail says why.
	SecretUnknown SecretState = "unknown"
)

// SecretInfo says whether a secret was injected, where it came from and whether that is still
// the current version, and shows its fingerprint, never its value.
type SecretInfo struct {
	// Name is the environment variable, e.g. "CONSUMERKEY".
	Name string `json:"name"`
	Set  bool   `json:"set"`
	// Fingerprint is fingerprint.Of(Name, Source, value), or "" while it is still being
	// computed (argon2id takes a moment, and start-up does not wait for it) or when the secret
	// is not set.
	Fingerprint string `json:"fingerprint"`
	// Source is the exact valueFrom the secret was injected from (a Secrets Manager ARN with
	// its JSON key, stage and version fields, or an SSM parameter name or ARN), "" when the
	// task does not say (SECRET_SOURCES). It is a reference, never a value.
	Source string `json:"source"`
	// State is current, rotated or unknown; Detail says why in one line.
	State  SecretState `json:"state"`
	Detail string      `json:"detail"`
	// RotatedAt is when the referenced version changed; set only when State is rotated.
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// TaskStartedAt is when this task's container started, from the task metadata endpoint.
	TaskStartedAt time.Time `json:"task_started_at,omitzero"`
	// CheckedAt is when the secret's metadata was last read.
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// MatchView is a stored match as the page and /api/matches show it.
type MatchView struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Text      string    `json:"text"`
	Lang      string    `json:"lang"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	// Terms are the track phrases that matched.
	Terms []string `json:"terms"`
}
