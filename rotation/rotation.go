// Package rotation tells whether the secrets ECS injected into this task are still the ones
// their references resolve to. ECS resolves a container's `secrets` once, when the task starts;
// after a rotation a running task keeps the old value until it is replaced, and nothing in ECS
// says so. The Checker compares, for each Secrets Manager reference, the version its stage
// points to now (DescribeSecret) and when that version was created (ListSecretVersionIds) with
// when this task started (the task metadata endpoint v4). Neither call returns a secret value,
// so the task role can be allowed them on exactly the injected secrets' ARNs.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/streammatch/streammatch/secrets/valuefrom"
)

// State is what the Checker knows about one injected secret.
type State string

// The states of /api/status secrets[].state.
const (
	// Current: the version the reference resolves to now existed before the task started, and
	// has not changed during this run.
	Current State = "current"
	// Rotated: the reference now resolves to a version this task cannot hold; a new task is
	// needed to pick it up.
	Rotated State = "rotated"
	// Unknown: the Checker cannot tell; Status.Detail says why.
	Unknown State = "unknown"
)

// The details of states that do not depend on a call. Other tools and tests read them.
const (
	DetailNoSources        = "SECRET_SOURCES is not set: the task definition does not say where this secret came from"
	DetailNoEntry          = "SECRET_SOURCES has no entry for this secret: the task definition does not say where it came from"
	DetailNoMetadata       = "no task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4 is not set)"
	DetailParameterStore   = "drift is not checked for SSM parameters: ssm:DescribeParameters cannot be limited to one parameter"
	DetailOff              = "the drift check is off (ROTATION_CHECK_INTERVAL=0)"
	DetailPinned           = "the reference pins a version id: it never drifts"
	DetailNotChecked       = "not checked yet"
	DetailWhileStarting    = "the version was created while the task was starting; it may or may not have been injected"
	detailCreatedBefore    = "the %s version was created before this task started"
	detailCreatedAfter     = "the %s version was created after this task started: restart the task to pick it up"
	detailMovedDuringRun   = "%s moved to another version during this run: restart the task to pick it up"
	detailNoStageVersion   = "no version of the secret holds stage %s"
	detailNoCreatedDate    = "ListSecretVersionIds gives no creation date for the %s version"
	detailAccessDeniedHint = " (the task role needs secretsmanager:DescribeSecret and secretsmanager:ListSecretVersionIds on this secret's ARN)"
)

// Secret is one injected secret: its environment name and where it came from.
type Secret struct {
	// Name is the environment variable, e.g. CONSUMERKEY.
	Name string
	// Source is the exact valueFrom of the task definition's entry, "" when unknown.
	Source string
	// Ref is Source parsed; ignored when Source is "".
	Ref valuefrom.Ref
}

// Status is the Checker's verdict on one secret. It holds references and dates, never a value.
type Status struct {
	Name   string
	Source string
	State  State
	Detail string
	// RotatedAt is when the referenced version changed (its creation date, or when this run
	// saw the stage move), set only when State is Rotated.
	RotatedAt time.Time
	// TaskStartedAt is this container's StartedAt, once the metadata endpoint has told it.
	TaskStartedAt time.Time
	// CheckedAt is when the secret's metadata was last read; zero if it never is.
	CheckedAt time.Time
}

// Config is what a Checker needs besides its Secrets Manager client.
type Config struct {
	Secrets []Secret
	// Interval is the time between checks; 0 turns the check off.
	Interval time.Duration
	// MetadataURL is ECS_CONTAINER_METADATA_URI_V4, "" when the task has none.
	MetadataURL string
	// HTTPClient reads the metadata endpoint; nil means a client that uses no proxy (the
	// endpoint is link-local, next to the task).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// NoSources says that SECRET_SOURCES was not set at all, so that a secret without a source
	// says so rather than that its entry is missing.
	NoSources bool
}

// Checker runs the drift check. Build it with NewChecker, run it with Run, read it with
// Statuses from any goroutine.
type Checker struct {
	api    secretsAPI
	cfg    Config
	logger *slog.Logger
	http   *http.Client

	mu      sync.Mutex
	tracked []*tracked
	start   TaskStart // zero until the metadata endpoint answered

	rotatedOnce sync.Once
	rotated     chan struct{}
}

// tracked is one secret's state across checks.
type tracked struct {
	secret Secret
	status Status
	// checkable is true for a Secrets Manager reference that names no version id.
	checkable bool
	// baseline is the version id this task may hold: the one the stage pointed to at the first
	// check that did not find it rotated. A later change away from it is a rotation.
	baseline        string
	baselineCreated time.Time
	// version is the version id the stage pointed to at the latest check.
	version string
}

// NewChecker returns a Checker over api (a *secretsmanager.Client with the task role's
// credentials). Nothing runs until Run; until the first check, Statuses says what is known
// without a call.
func NewChecker(api secretsAPI, cfg Config) *Checker {
	c := &Checker{api: api, cfg: cfg, logger: cfg.Logger, http: cfg.HTTPClient, rotated: make(chan struct{})}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	for _, s := range cfg.Secrets {
		t := &tracked{secret: s, status: Status{Name: s.Name, Source: s.Source, State: Unknown}}
		switch {
		case s.Source == "" && cfg.NoSources:
			t.status.Detail = DetailNoSources
		case s.Source == "":
			t.status.Detail = DetailNoEntry
		case s.Ref.Store != valuefrom.SecretsManager:
			t.status.Detail = DetailParameterStore
		case s.Ref.VersionID != "":
			t.status.State, t.status.Detail = Current, DetailPinned
		case cfg.Interval <= 0:
			t.status.Detail = DetailOff
		default:
			t.checkable = true
			t.status.Detail = DetailNotChecked
		}
		c.tracked = append(c.tracked, t)
	}
	return c
}

// Statuses returns a snapshot of every secret's status, in the order of Config.Secrets.
func (c *Checker) Statuses() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Status, len(c.tracked))
	for i, t := range c.tracked {
		out[i] = t.status
	}
	return out
}

// Rotated is closed when a check first finds a secret rotated, so that the service can stop
// and let ECS start a task with the new value (ROTATION_ACTION=exit).
func (c *Checker) Rotated() <-chan struct{} { return c.rotated }

// Run checks at once and then every Interval until ctx ends. It returns nil at once when there
// is nothing to check (the check is off, or no secret is a Secrets Manager reference that can
// drift). A failed check is not an error of Run: it shows as state unknown, and the next check
// tries again.
func (c *Checker) Run(ctx context.Context) error {
	if !c.anyCheckable() {
		return nil
	}
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		c.check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (c *Checker) anyCheckable() bool {
	for _, t := range c.tracked {
		if t.checkable {
			return true
		}
	}
	return false
}

// secretMetadata is what one check learned about one secret ARN, shared by every reference to
// it (the four Twitter keys are four JSON keys of one secret).
type secretMetadata struct {
	stages      map[string][]string // version id -> stages
	lastChanged time.Time
	created     map[string]time.Time // version id -> creation date; nil until listed
	err         string               // the call that failed and why, as a detail
}

// check runs one round: the task's start (until known), then each secret's metadata.
func (c *Checker) check(ctx context.Context) {
	c.mu.Lock()
	start := c.start
	c.mu.Unlock()
	startDetail := ""
	if start.StartedAt.IsZero() {
		if c.cfg.MetadataURL == "" {
			startDetail = DetailNoMetadata
		} else if s, err := fetchTaskStart(ctx, c.http, c.cfg.MetadataURL); err != nil {
			if ctx.Err() != nil {
				return
			}
			startDetail = oneLine(err.Error())
		} else {
			start = s
			c.mu.Lock()
			c.start = s
			c.mu.Unlock()
		}
	}

	byARN := map[string]*secretMetadata{}
	for _, t := range c.tracked {
		if !t.checkable {
			continue
		}
		md, ok := byARN[t.secret.Ref.ID]
		if !ok {
			md = c.describe(ctx, t.secret.Ref)
			if ctx.Err() != nil {
				return // shutting down: keep the last verdicts rather than record a cancelled call
			}
			byARN[t.secret.Ref.ID] = md
		}
		stage := t.secret.Ref.EffectiveVersionStage()
		version := ""
		if md.err == "" {
			version = versionWithStage(md.stages, stage)
		}
		if version != "" && md.created == nil {
			c.listVersions(ctx, t.secret.Ref, md)
			if ctx.Err() != nil {
				return
			}
		}
		c.update(t, md, stage, version, start, startDetail)
	}
}

// describe calls DescribeSecret on the secret behind ref.
func (c *Checker) describe(ctx context.Context, ref valuefrom.Ref) *secretMetadata {
	out, err := c.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ref.ID)}, inRegion(ref))
	if err != nil {
		return &secretMetadata{err: callDetail("DescribeSecret", err)}
	}
	md := &secretMetadata{stages: out.VersionIdsToStages}
	if out.LastChangedDate != nil {
		md.lastChanged = *out.LastChangedDate
	}
	return md
}

// listVersions fills md.created from ListSecretVersionIds, every page.
func (c *Checker) listVersions(ctx context.Context, ref valuefrom.Ref, md *secretMetadata) {
	created := map[string]time.Time{}
	in := &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(ref.ID)}
	for {
		out, err := c.api.ListSecretVersionIds(ctx, in, inRegion(ref))
		if err != nil {
			md.err = callDetail("ListSecretVersionIds", err)
			return
		}
		for _, v := range out.Versions {
			if v.VersionId == nil || v.CreatedDate == nil {
				continue
			}
			// No version can be newer than the secret's last change, which creating a version
			// is. On AWS the bound changes nothing; moto 5.2's ListSecretVersionIds answers
			// the time of the call as every version's CreatedDate, and without the bound every
			// secret there would look rotated a second after the task started.
			at := *v.CreatedDate
			if !md.lastChanged.IsZero() && md.lastChanged.Before(at) {
				at = md.lastChanged
			}
			created[*v.VersionId] = at
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	md.created = created
}

// update applies the drift rule to one secret and logs a change of its state. Only check calls
// it, from Run's goroutine, so it reads t without the lock and writes t.status under it.
func (c *Checker) update(t *tracked, md *secretMetadata, stage, version string, start TaskStart, startDetail string) {
	now := time.Now()
	next := Status{Name: t.secret.Name, Source: t.secret.Source, State: Unknown, TaskStartedAt: start.StartedAt, CheckedAt: now}
	newVersion := version
	switch {
	case md.err != "":
		next.Detail = md.err
		newVersion = t.version // an error says nothing about the version
	case version == "":
		next.Detail = fmt.Sprintf(detailNoStageVersion, stage)
	case t.baseline != "" && version != t.baseline:
		// The stage moved during this run (a PutSecretValue, or a stage moved by hand to an
		// older version): the task holds the baseline at best.
		next.State, next.Detail = Rotated, fmt.Sprintf(detailMovedDuringRun, stage)
		// A newer version is dated by its creation; a stage moved back to an older version by
		// the secret's last change, which the move was.
		created, ok := md.created[version]
		switch {
		case t.status.State == Rotated && t.version == version:
			next.RotatedAt = t.status.RotatedAt
		case ok && created.After(t.baselineCreated):
			next.RotatedAt = created
		case !md.lastChanged.IsZero():
			next.RotatedAt = md.lastChanged
		default:
			next.RotatedAt = now
		}
	default:
		created, ok := md.created[version]
		switch {
		case !ok:
			next.Detail = fmt.Sprintf(detailNoCreatedDate, stage)
		case start.StartedAt.IsZero():
			next.Detail = startDetail
		case created.After(start.StartedAt):
			next.State, next.Detail, next.RotatedAt = Rotated, fmt.Sprintf(detailCreatedAfter, stage), created
		case created.Before(start.earliest()):
			next.State, next.Detail = Current, fmt.Sprintf(detailCreatedBefore, stage)
		default:
			next.Detail = DetailWhileStarting
		}
		// A version found rotated by its date is not one the task may hold; any other verdict
		// leaves open that the task holds it, so it becomes the baseline to compare with.
		if next.State != Rotated && t.baseline == "" && ok {
			t.baseline, t.baselineCreated = version, created
		}
	}

	c.mu.Lock()
	prev := t.status
	prevVersion := t.version
	t.status, t.version = next, newVersion
	c.mu.Unlock()

	changed := prev.State != next.State || prev.Detail != next.Detail ||
		(next.State == Rotated && prevVersion != newVersion)
	if !changed {
		return
	}
	switch next.State {
	case Rotated:
		c.logger.Warn("secret rotated", "name", next.Name, "source", next.Source,
			"rotated_at", next.RotatedAt, "task_started_at", next.TaskStartedAt, "detail", next.Detail)
		c.rotatedOnce.Do(func() { close(c.rotated) })
	case Current:
		c.logger.Info("secret current", "name", next.Name, "source", next.Source,
			"task_started_at", next.TaskStartedAt, "detail", next.Detail)
	default:
		c.logger.Warn("secret drift unknown", "name", next.Name, "source", next.Source, "detail", next.Detail)
	}
}

// versionWithStage returns the version id that carries stage, or "".
func versionWithStage(stages map[string][]string, stage string) string {
	for id, labels := range stages {
		for _, l := range labels {
			if l == stage {
				return id
			}
		}
	}
	return ""
}

// inRegion sends a call to the region in the secret's ARN, which may differ from the table's.
func inRegion(ref valuefrom.Ref) func(*secretsmanager.Options) {
	return func(o *secretsmanager.Options) {
		if ref.Region != "" {
			o.Region = ref.Region
		}
	}
}

// callDetail names the call and the AWS error code, e.g. "DescribeSecret: AccessDeniedException
// (...)". Neither call returns a value, so no error of theirs can hold one.
func callDetail(call string, err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		detail := call + ": " + apiErr.ErrorCode()
		if isAccessDenied(apiErr.ErrorCode()) {
			detail += detailAccessDeniedHint
		}
		return detail
	}
	return call + ": " + oneLine(err.Error())
}

func isAccessDenied(code string) bool {
	return code == "AccessDeniedException" || code == "AccessDenied" || code == "UnauthorizedOperation"
}

// oneLine folds white space so that a detail stays one line, and bounds its length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
