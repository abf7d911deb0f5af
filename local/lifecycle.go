package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streammatch/streammatch/local/agent"
	"github.com/streammatch/streammatch/secrets"
)

// launcher starts the tasks of one task definition as ECS does: once for a one-off task, and
// again for every replacement when local acts as a service (-service). Each task gets what a
// task gets on ECS: its secrets resolved afresh with the execution role, its own ids, token
// and agent endpoints, and start times in its metadata that say when its secrets were read.
type launcher struct {
	o           options
	mode        string // process or container
	td          *secrets.TaskDefinition
	cd          secrets.ContainerDefinition
	p           provisioned
	cfg         aws.Config // the emulator, with its root keys
	execCfg     aws.Config // the execution role's
	image       string
	bindHost    string
	hostNetwork bool
	publish     string
	httpAddr    string
	logOut      io.Writer // nil when -quiet
	say         func(string, ...any)
	stderr      io.Writer
	pathEnv     string
	stopTimeout time.Duration

	// Known once the first task's dependencies run.
	simURL      string
	appEndpoint string
	bin         string  // process mode: the built binary
	eng         *engine // container mode

	mu        sync.Mutex
	current   *taskRun
	starts    int
	finished  appCounters // summed over the tasks that stopped
	unknown   int         // stopped tasks that logged no final counts
	rotations []rotation
}

// taskRun is one task: the agent's endpoints for it and its essential container.
type taskRun struct {
	agent     *agent.Server
	token     string
	stopAgent func() error
	app       runningApp // nil until started
	out       *appOutput
	stopped   bool
	final     appCounters // from the app's last log line, once stopped
}

// rotation is one change of the secret's value that local made.
type rotation struct {
	At        time.Time
	VersionID string
}

// resolve reads the container's secrets with the execution role, as the agent does before
// each task's container starts. An error is the task's stopped reason.
func (l *launcher) resolve(ctx context.Context) ([]secrets.EnvVar, error) {
	return secrets.NewResolver(l.execCfg).Resolve(ctx, l.cd.Secrets)
}

// newTask builds a task's metadata and serves its agent endpoints. pullStarted is when the
// agent began preparing the task, before it read the secrets: a secret version created
// before it is certainly the one the task holds.
func (l *launcher) newTask(ctx context.Context, pullStarted time.Time) (*taskRun, error) {
	token, err := agent.RandomHex(32)
	if err != nil {
		return nil, err
	}
	meta, err := taskMetadata(l.td, l.cd, l.p, l.o, l.image)
	if err != nil {
		return nil, err
	}
	meta.task.PullStartedAt, meta.task.PullStoppedAt = &pullStarted, nil
	meta.container.CreatedAt = nil
	srv, err := agent.New(agent.Config{
		Credentials: assumeRole(l.cfg, l.p.TaskRoleARN, "ecs-task-local"),
		RoleArn:     l.p.TaskRoleARN,
		Token:       token,
		Task:        meta.task,
		Container:   meta.container,
	}, net.JoinHostPort(l.bindHost, "0"))
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Run(actx) }()
	var once sync.Once
	var stopErr error
	t := &taskRun{agent: srv, token: token, stopAgent: func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}}
	l.mu.Lock()
	l.current = t
	l.mu.Unlock()
	l.say("ECS agent endpoints: task role credentials and task metadata v4 at %s", srv.MetadataURL(l.bindHost))
	return t, nil
}

// pulled records the end of the task's preparation (the image pull on ECS; local's build).
func (t *taskRun) pulled(at time.Time) {
	t.agent.SetTask(func(m *agent.TaskMetadata) { m.PullStoppedAt = &at })
}

// environment is exactly what ECS gives the container: the taskdef's environment, the
// resolved secrets and the agent's variables, plus local's own (the emulator, the simulator,
// the rotation settings).
func (l *launcher) environment(t *taskRun, resolved []secrets.EnvVar) []secrets.EnvVar {
	own := []secrets.EnvVar{
		{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: t.agent.CredentialsURL(l.bindHost)},
		{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN", Value: t.token},
		{Name: "ECS_CONTAINER_METADATA_URI_V4", Value: t.agent.MetadataURL(l.bindHost)},
		{Name: "AWS_EXECUTION_ENV", Value: "AWS_ECS_FARGATE"},
		{Name: "AWS_REGION", Value: l.o.Region},
		{Name: "AWS_DEFAULT_REGION", Value: l.o.Region},
		{Name: "AWS_ENDPOINT_URL", Value: l.appEndpoint},
		// The stream is always local's simulator, whatever the task definition or a -var says:
		// a local run never reaches the real service.
		{Name: streamURLVars[l.o.Source], Value: l.simURL},
		{Name: "HTTP_ADDR", Value: l.httpAddr},
		{Name: "ROTATION_CHECK_INTERVAL", Value: durationValue(l.o.RotationCheck)},
	}
	if l.o.Service {
		// An ECS service replaces a task that exits, so the app may leave on drift.
		own = append(own, secrets.EnvVar{Name: "ROTATION_ACTION", Value: "exit"})
	}
	return appEnvironment(l.cd.Environment, secretSourcesEntry(l.cd), resolved, own)
}

// secretSourcesEntry is SECRET_SOURCES for a task definition that does not carry it yet:
// the rendering of the container's secrets, exactly what the entry
// {"name": "SECRET_SOURCES", "value": "${SECRET_SOURCES}"} renders to. Nothing when the task
// definition has the entry (its value, rendered or given with -var, is the one ECS passes).
func secretSourcesEntry(cd secrets.ContainerDefinition) []secrets.EnvVar {
	for _, e := range cd.Environment {
		if e.Name == secrets.SecretSourcesVar {
			return nil
		}
	}
	return []secrets.EnvVar{{Name: secrets.SecretSourcesVar, Value: secrets.SecretSources(cd.Secrets)}}
}

// durationValue writes d as the app reads it; 0 stays "0", the value that turns a check off.
func durationValue(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

// start starts the task's container with resolved and records its start in the metadata.
func (l *launcher) start(ctx context.Context, t *taskRun, resolved []secrets.EnvVar) error {
	env := l.environment(t, resolved)
	t.out = newAppOutput(l.logOut)
	created := time.Now().UTC()
	t.agent.SetContainer(func(c *agent.ContainerMetadata) { c.CreatedAt = &created })
	if l.mode == "process" {
		app, err := startProcess(l.bin, append(envStrings(env), l.pathEnv), "http://"+l.publish+"/healthz", t.out)
		if err != nil {
			return err
		}
		t.app = app
		t.agent.SetContainer(func(c *agent.ContainerMetadata) {
			now := time.Now().UTC()
			c.StartedAt, c.KnownStatus = &now, "RUNNING"
		})
	} else {
		cpu, mem := taskSize(l.td.Cpu, l.td.Memory)
		if l.cd.Memory != nil {
			mem = *l.cd.Memory
		}
		containerPort := 8080
		if len(l.cd.PortMappings) > 0 && l.cd.PortMappings[0].ContainerPort > 0 {
			containerPort = l.cd.PortMappings[0].ContainerPort
		}
		c, err := startContainer(ctx, containerSpec{
			Image: l.image, Env: env, Def: l.cd, Publish: l.publish, Port: containerPort, Host: l.hostNetwork, CPU: cpu, Memory: mem,
		}, l.eng, t.out)
		if err != nil {
			return err
		}
		t.app = c
		t.agent.SetContainer(func(m *agent.ContainerMetadata) {
			now := time.Now().UTC()
			m.DockerID, m.StartedAt, m.KnownStatus = c.ID(), &now, "RUNNING"
		})
	}
	t.agent.SetKnownStatus("RUNNING")
	l.mu.Lock()
	l.starts++
	n := l.starts
	l.mu.Unlock()
	l.say("app started: %s%s", t.app.Describe(), map[bool]string{true: " (start " + strconv.Itoa(n) + ")", false: ""}[n > 1])
	return nil
}

// stopTask stops the task's container (SIGTERM, then SIGKILL after stopTimeout) and its agent
// endpoints, and adds its final counts to the run's. Calling it again does nothing.
func (l *launcher) stopTask(ctx context.Context, t *taskRun) error {
	l.mu.Lock()
	if t == nil || t.stopped {
		l.mu.Unlock()
		return nil
	}
	t.stopped = true
	l.mu.Unlock()
	var err error
	if t.app != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.stopTimeout+30*time.Second)
		err = t.app.Stop(sctx, l.stopTimeout)
		cancel()
		c := t.out.finalCounters()
		l.mu.Lock()
		t.final = c
		if c.Known {
			l.finished = addCounters(l.finished, c)
		} else {
			l.unknown++
		}
		l.mu.Unlock()
	}
	t.agent.SetKnownStatus("STOPPED")
	return errors.Join(err, t.stopAgent())
}

// stopCurrent stops the task that runs now, for teardown.
func (l *launcher) stopCurrent(ctx context.Context) error {
	l.mu.Lock()
	t := l.current
	l.mu.Unlock()
	return l.stopTask(ctx, t)
}

func addCounters(a, b appCounters) appCounters {
	return appCounters{Received: a.Received + b.Received, Matched: a.Matched + b.Matched, Written: a.Written + b.Written, Failed: a.Failed + b.Failed, Known: true}
}

// replace starts a new task after the last one's container exited, as an ECS service does:
// the secrets are resolved again with the execution role, so the new container holds the
// secret's current values. A replacement that does not become healthy is replaced in turn,
// after a growing delay (1s, 2s, 4s, ... 30s), until ctx ends. A secret that cannot be
// resolved ends the run: on ECS the service would keep failing to start tasks.
func (l *launcher) replace(ctx context.Context) (*taskRun, error) {
	delay := time.Second
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		pullStarted := time.Now().UTC()
		resolved, err := l.resolve(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fmt.Fprintf(l.stderr, "local: the replacement task stopped before container %s started: %v\n", l.cd.Name, err)
			return nil, &exitError{code: 1, err: errors.New("the replacement task's secrets could not be resolved; see the stopped reason above")}
		}
		l.say("replacement task: secrets resolved again with the execution role")
		t, err := l.newTask(ctx, pullStarted)
		if err != nil {
			return nil, err
		}
		t.pulled(time.Now().UTC())
		if err := l.start(ctx, t, resolved); err != nil {
			_ = l.stopTask(ctx, t)
			return nil, err
		}
		if err := t.app.WaitHealthy(ctx); err != nil {
			_ = l.stopTask(ctx, t)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			l.say("the replacement is not healthy (%v); the service replaces it", err)
			delay = min(2*delay, 30*time.Second)
			continue
		}
		l.say("replacement healthy: %s", t.app.Describe())
		return t, nil
	}
}

// errForElapsed is the cause of the run's end when -for elapsed.
var errForElapsed = errors.New("-for elapsed")

// serve runs the started task until Ctrl-C or -for: it rotates the secret after
// -rotate-after and, with -service, replaces the task whenever its container exits. It
// returns the task running at the end (nil if none) and the run's error: an exited container
// without -service, as on ECS, where a one-off task then stops.
func (l *launcher) serve(ctx context.Context, t *taskRun, sim streamSimulator) (*taskRun, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if l.o.For > 0 {
		timer := time.AfterFunc(l.o.For, func() { cancel(errForElapsed) })
		defer timer.Stop()
	}
	var rotateC <-chan time.Time
	if l.o.RotateAfter > 0 {
		timer := time.NewTimer(l.o.RotateAfter)
		defer timer.Stop()
		rotateC = timer.C
		l.say("the secret will be rotated in %s", l.o.RotateAfter)
	}
	for {
		select {
		case <-runCtx.Done():
			l.sayEnd(runCtx)
			return t, nil
		case <-rotateC:
			rotateC = nil
			if err := l.rotate(runCtx, sim); err != nil {
				return t, err
			}
		case <-t.app.Exited():
			status := t.app.ExitStatus()
			if !l.o.Service {
				return t, fmt.Errorf("the essential container %s exited (%s), so the task stopped, as on ECS", l.cd.Name, status)
			}
			l.say("the essential container %s exited (%s); as an ECS service, local starts a replacement task", l.cd.Name, status)
			if err := l.stopTask(ctx, t); err != nil {
				l.say("warning: %v", err)
			}
			next, err := l.replace(runCtx)
			if err != nil {
				if runCtx.Err() != nil {
					l.sayEnd(runCtx)
					return nil, nil
				}
				return nil, err
			}
			t = next
		}
	}
}

func (l *launcher) sayEnd(runCtx context.Context) {
	if errors.Is(context.Cause(runCtx), errForElapsed) {
		l.say("%s elapsed: stopping the app (SIGTERM, stopTimeout %s)", l.o.For, l.stopTimeout)
	} else {
		l.say("interrupted: stopping the app (SIGTERM, stopTimeout %s)", l.stopTimeout)
	}
}

// rotate puts new random values in the secret, as a rotation does: PutSecretValue makes the
// new version AWSCURRENT and the old one AWSPREVIOUS. The simulator accepts only the new
// values from now on. The running app keeps the values it was started with; its drift check
// sees the new version within ROTATION_CHECK_INTERVAL.
func (l *launcher) rotate(ctx context.Context, sim streamSimulator) error {
	creds, err := randomCredentials(l.o.Source)
	if err != nil {
		return err
	}
	value, err := secretJSON(creds)
	if err != nil {
		return err
	}
	out, err := secretsmanager.NewFromConfig(l.cfg).PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(l.p.SecretARN), SecretString: aws.String(value),
	})
	if err != nil {
		return fmt.Errorf("rotate the secret %s: put secret value: %w", l.p.SecretARN, err)
	}
	if err := sim.rotate(creds); err != nil {
		return err
	}
	r := rotation{At: time.Now().UTC(), VersionID: aws.ToString(out.VersionId)}
	l.mu.Lock()
	l.rotations = append(l.rotations, r)
	l.mu.Unlock()
	what := "the app reports it on its page within ROTATION_CHECK_INTERVAL (" + durationValue(l.o.RotationCheck) + ")"
	if l.o.RotationCheck == 0 {
		what = "the app's drift check is off (-rotation-check 0), so its page does not show it"
	}
	if l.o.Service {
		what += " and exits (ROTATION_ACTION=exit); local then starts a new app with the new values"
	}
	l.say("rotated the secret in the emulator: new random values (never printed), version %s is AWSCURRENT; the running app keeps the old values until it is replaced; %s", r.VersionID, what)
	return nil
}

// lifecycle is the part of the summary about the tasks and the secret.
func (l *launcher) lifecycle() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := fmt.Sprintf("app starts: %d", l.starts)
	if l.unknown > 0 {
		s += fmt.Sprintf(" (%d of them ended without logging final counts, which are not in the sum)", l.unknown)
	}
	switch n := len(l.rotations); n {
	case 0:
		s += "; secret rotated: no"
	default:
		last := l.rotations[n-1]
		s += fmt.Sprintf("; secret rotated: yes, at %s (version %s)", last.At.Format(time.RFC3339), last.VersionID)
	}
	return s
}

// counters are the run's final counts, summed over the tasks: a task that logged none (it was
// killed) counts with its page's last answer when it is the final task (fallback), and not at
// all otherwise; lifecycle says how many were left out.
func (l *launcher) counters(final *taskRun, fallback appCounters) appCounters {
	l.mu.Lock()
	defer l.mu.Unlock()
	if final != nil && final.stopped && final.app != nil && !final.final.Known && fallback.Known {
		l.finished = addCounters(l.finished, fallback)
		l.unknown--
	}
	return l.finished
}
