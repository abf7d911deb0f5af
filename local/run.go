package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/streammatch/streammatch/local/agent"
	"github.com/streammatch/streammatch/secrets"
)

// modulePath identifies the repository whose app local builds.
const modulePath = "github.com/streammatch/streammatch"

// syncWriter serialises writes from local's progress lines and the app's passed-through log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// run is the whole command. getenv replaces os.Getenv so that tests choose the environment
// local reads (AWS_ENDPOINT_URL, LOCALSTACK_AUTH_TOKEN, DOCKER_HOST, PATH, ...); the tools it
// starts for itself (moto_server, podman, go build) get the real environment, and the app gets
// only what ECS would give it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	o, err := parseOptions(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	out := &syncWriter{w: stdout}
	say := func(format string, a ...any) { fmt.Fprintf(out, "local: "+format+"\n", a...) }

	repo, err := findRepoRoot()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	taskdefPath := o.TaskDef
	if _, err := os.Stat(taskdefPath); err != nil && !filepath.IsAbs(taskdefPath) {
		if _, err2 := os.Stat(filepath.Join(repo, taskdefPath)); err2 == nil {
			taskdefPath = filepath.Join(repo, taskdefPath)
		}
	}
	publish, err := reservePublishAddr(o.Addr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}

	creds, err := loadCredentials(o, say)
	if err != nil {
		return &exitError{code: 2, err: err}
	}

	cl := &cleanups{}
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		cl.run(tctx, stderr)
		say("torn down everything this run started")
	}()

	// The container engine, looked up once and only when something needs it.
	var eng *engine
	var engErr error
	engineLooked := false
	getEngine := func() (*engine, error) {
		if engineLooked {
			return eng, engErr
		}
		engineLooked = true
		if eng = findEngine(ctx, getenv); eng == nil {
			if o.Run == "container" {
				eng, engErr = startPodmanService(ctx, getenv, cl)
			} else {
				engErr = errors.New("no container engine answers (DOCKER_HOST, /var/run/docker.sock, podman's socket)")
			}
		}
		if eng != nil {
			say("container engine: %s", eng)
		}
		return eng, engErr
	}

	mode := o.Run
	if mode == "auto" {
		mode = "process"
		if e, _ := getEngine(); e != nil {
			mode = "container"
		}
	}
	bindHost, hostNetwork := "127.0.0.1", false
	if mode == "container" {
		if _, err := getEngine(); err != nil {
			return fmt.Errorf("-run container: %w", err)
		}
		switch o.Network {
		case "host":
			hostNetwork = true
		default:
			if _, err := ensureECSEndpointIP(ctx, cl); err != nil {
				if o.Network == "bridge" {
					return fmt.Errorf("-network bridge: %w", err)
				}
				say("note: %v; the container shares the host's network instead (-network host), so it reaches the endpoints on 127.0.0.1", err)
				hostNetwork = true
			} else {
				bindHost = ecsEndpointIP
			}
		}
	}
	say("run mode: %s%s", mode, map[bool]string{true: ", host network", false: ""}[mode == "container" && hostNetwork])

	// 1. The AWS endpoint.
	ep, err := startEndpoint(ctx, o, getenv, getEngine, cl, say)
	if err != nil {
		return err
	}
	say("AWS endpoint up: %s at %s", ep.What, ep.URL)

	// 2. Provisioning.
	n := namesFor(o.App, o.Source, o.Table)
	cfg := emulatorConfig(ep.URL, o.Region)
	p, err := provision(ctx, cfg, n, creds)
	if err != nil {
		return fmt.Errorf("provision in %s: %w", ep.URL, err)
	}
	say("provisioned in account %s: secret %s, table %s, execution role %s, task role %s", p.Account, n.Secret, n.Table, n.ExecutionRole, n.TaskRole)

	// The stream simulator, before the task definition: its URL fills the template's stream
	// setting (X_STREAM_URL, MASTODON_URL), as the deploy scripts fill the real one.
	sim, err := newStreamSimulator(o, creds, bindHost)
	if err != nil {
		return err
	}
	goRun(cl, "stream simulator", ctx, sim.Run)
	say("stream simulator: %s (%s)", sim.URL(), sim.describe())

	// 3. The ECS agent's part: the task definition, its secrets, its endpoints.
	image := localImage
	if o.Image != "" {
		image = o.Image
	}
	vars := map[string]string{
		"AWS_ACCOUNT_ID": p.Account, "AWS_REGION": o.Region, "AWS_PARTITION": p.Partition,
		"APP_NAME": o.App, "CLUSTER": o.App, "TABLE_NAME": n.Table, "FILTER": o.Filter, "SOURCE": o.Source,
		"SECRET_ARN": p.SecretARN, "EXECUTION_ROLE_ARN": p.ExecutionRoleARN, "TASK_ROLE_ARN": p.TaskRoleARN,
		"IMAGE": image, "LOG_GROUP": n.LogGroup, "CPU_ARCHITECTURE": cpuArchitecture(),
		"X_STREAM_URL": sim.URL(), "MASTODON_URL": sim.URL(),
	}
	for k, v := range o.Vars {
		vars[k] = v
	}
	td, err := secrets.LoadTaskDefinition(taskdefPath, vars)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("task definition: %w", err)}
	}
	cd, err := essentialContainer(td)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	for _, f := range secrets.Lint(td) {
		say("warning: %s: %s", taskdefPath, f)
	}

	execCfg := cfg.Copy()
	execCfg.Credentials = assumeRole(cfg, p.ExecutionRoleARN, "ecs-agent-local-execution")
	stopTimeout := time.Duration(secrets.DefaultStopTimeout) * time.Second
	if cd.StopTimeout != nil {
		stopTimeout = time.Duration(*cd.StopTimeout) * time.Second
	}
	var logOut io.Writer = out
	if o.Quiet {
		logOut = nil
	}
	l := &launcher{
		o: o, mode: mode, td: td, cd: cd, p: p, cfg: cfg, execCfg: execCfg, image: image,
		bindHost: bindHost, hostNetwork: hostNetwork, publish: publish, logOut: logOut, say: say,
		stderr: stderr, pathEnv: "PATH=" + getenv("PATH"), stopTimeout: stopTimeout, simURL: sim.URL(),
	}
	// The agent reads the secrets while it prepares the task, before the container starts:
	// the task's PullStartedAt is taken just before, so that the metadata says truthfully
	// which secret versions the task may hold.
	pullStarted := time.Now().UTC()
	resolved, err := l.resolve(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "local: the task stopped before container %s started (nothing was started): %v\n", cd.Name, err)
		return &exitError{code: 1, err: errors.New("secrets could not be resolved; see the stopped reason above")}
	}
	secretNames := make([]string, 0, len(resolved))
	for _, e := range resolved {
		secretNames = append(secretNames, e.Name)
	}
	say("secrets resolved with the execution role: %s", strings.Join(secretNames, ", "))

	// Teardown stops the app first and the agent endpoints after it: cleanups run newest
	// first, and "the app" is added once it starts.
	cl.add("ECS agent endpoints", func(ctx context.Context) error { return l.stopCurrent(ctx) })
	first, err := l.newTask(ctx, pullStarted)
	if err != nil {
		return err
	}

	l.appEndpoint = ep.URL
	if mode == "container" && !hostNetwork {
		target, err := hostPortOf(ep.URL)
		if err != nil {
			return err
		}
		fwd, err := newForwarder(bindHost, target)
		if err != nil {
			return err
		}
		goRun(cl, "emulator forwarder", ctx, fwd.Run)
		l.appEndpoint = "http://" + fwd.Addr()
	}

	// 4. The app, with exactly the environment ECS would give it.
	l.httpAddr = publish
	if mode == "container" && !hostNetwork {
		containerPort := 8080
		if len(cd.PortMappings) > 0 && cd.PortMappings[0].ContainerPort > 0 {
			containerPort = cd.PortMappings[0].ContainerPort
		}
		l.httpAddr = ":" + strconv.Itoa(containerPort)
	}
	if mode == "process" {
		say("building the app: go build in %s", repo)
		if l.bin, err = buildBinary(ctx, repo, cl); err != nil {
			return err
		}
	} else {
		l.eng, _ = getEngine()
		if o.Image == "" {
			if l.image, err = buildImage(ctx, repo, l.eng, say); err != nil {
				return err
			}
		}
	}
	first.pulled(time.Now().UTC())
	if err := l.start(ctx, first, resolved); err != nil {
		return err
	}
	cl.add("the app", func(ctx context.Context) error { return l.stopCurrent(ctx) })

	if err := first.app.WaitHealthy(ctx); err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted while waiting for the app to become healthy")
		}
		return fmt.Errorf("the app is not healthy: %w", err)
	}
	if mode == "container" {
		say("container healthy: its health check command exits 0")
	} else {
		say("app healthy: /healthz answers 200")
	}
	base := "http://" + publish
	say("status page: %s/", base)
	if o.For > 0 {
		say("running for %s (Ctrl-C stops earlier)", o.For)
	} else {
		say("running until Ctrl-C")
	}
	if o.Service {
		say("acting as an ECS service: when the app exits, a replacement task starts with the secrets resolved again")
	}

	last, runErr := l.serve(ctx, first, sim)
	fallback, _ := pageCounters(context.WithoutCancel(ctx), base)
	if err := l.stopTask(ctx, last); err != nil {
		say("warning: %v", err)
	}
	say("%s", summary(context.WithoutCancel(ctx), cfg, ep, n.Table, o.Region, l.counters(last, fallback), l.lifecycle()))
	return runErr
}

// goRun runs fn in a goroutine until teardown, which cancels it and waits for it to return.
func goRun(cl *cleanups, what string, ctx context.Context, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	cl.add(what, func(context.Context) error {
		cancel()
		return <-done
	})
}

// loadCredentials reads -secrets or makes random values.
func loadCredentials(o options, say func(string, ...any)) (secretValues, error) {
	label := sourceLabels[o.Source]
	if o.SecretsFile == "" {
		say("no -secrets file: generated a random %s (it never leaves the emulator, the simulator and the app)", label)
		return randomCredentials(o.Source)
	}
	keys := sourceSecretKeys[o.Source]
	creds, warnings, err := readSecretsFile(o.SecretsFile, keys)
	for _, w := range warnings {
		say("warning: %s", w)
	}
	if err != nil {
		return nil, err
	}
	say("%s from %s: %s", label, o.SecretsFile, strings.Join(keys, ", "))
	return creds, nil
}

// assumeRole returns cached credentials of role, assumed with the emulator's root keys, as ECS
// assumes the execution and task roles for a task.
func assumeRole(cfg aws.Config, role, session string) aws.CredentialsProvider {
	return aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = session
		o.Duration = time.Hour
	}))
}

// essentialContainer picks the container local runs: the first essential one.
func essentialContainer(td *secrets.TaskDefinition) (secrets.ContainerDefinition, error) {
	for _, c := range td.ContainerDefinitions {
		if c.IsEssential() {
			return c, nil
		}
	}
	return secrets.ContainerDefinition{}, errors.New("the task definition has no essential container")
}

// appEnvironment merges the container definition's environment, the resolved secrets and
// local's own entries; a later entry replaces an earlier one of the same name.
func appEnvironment(groups ...[]secrets.EnvVar) []secrets.EnvVar {
	var out []secrets.EnvVar
	index := map[string]int{}
	for _, g := range groups {
		for _, e := range g {
			if i, ok := index[e.Name]; ok {
				out[i] = e
				continue
			}
			index[e.Name] = len(out)
			out = append(out, e)
		}
	}
	return out
}

func envStrings(env []secrets.EnvVar) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

// reservePublishAddr checks that the page's address is free and turns port 0 into a free port.
func reservePublishAddr(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("-addr %s is already in use (another local run, or another server?); pass -addr 127.0.0.1:0 for a free port, or another port such as -addr 127.0.0.1:8090", addr)
		}
		return "", fmt.Errorf("-addr %s: %w", addr, err)
	}
	got := ln.Addr().String()
	ln.Close()
	return got, nil
}

// hostPortOf returns the host:port of an http(s) URL, with the scheme's default port.
func hostPortOf(u string) (string, error) {
	rest, ok := strings.CutPrefix(u, "http://")
	port := "80"
	if !ok {
		if rest, ok = strings.CutPrefix(u, "https://"); !ok {
			return "", fmt.Errorf("endpoint %q is not an http(s) URL", u)
		}
		port = "443"
	}
	host, _, _ := strings.Cut(rest, "/")
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, port)
	}
	return host, nil
}

// findRepoRoot walks up from the working directory to the module's go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run local inside the streammatch repository (no go.mod of %s above %s)", modulePath, dir)
		}
	}
}

// summary is the one line printed at the end: the counts, the tasks and the secret's
// rotation (lifecycle), and where the items are.
func summary(ctx context.Context, cfg aws.Config, ep awsEndpoint, table, region string, c appCounters, lifecycle string) string {
	counts := "received ?, matched ?, written ? (the app logged no final counts)"
	if c.Known {
		counts = fmt.Sprintf("received %d, matched %d, written %d", c.Received, c.Matched, c.Written)
		if c.Failed > 0 {
			counts += fmt.Sprintf(", failed %d", c.Failed)
		}
	}
	items := ""
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := dynamodb.NewFromConfig(cfg).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), Select: ddbtypes.SelectCount}); err == nil {
		items = fmt.Sprintf(" (it holds %d items)", out.Count)
	}
	where := fmt.Sprintf("DynamoDB table %s%s at %s, region %s; scan: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws dynamodb scan --table-name %s --endpoint-url %s --region %s",
		table, items, ep.URL, region, table, ep.URL, region)
	if ep.Ephemeral {
		where += " (while it runs: the emulator stops with this run; pass -aws URL with your own endpoint to keep the items)"
	}
	return "summary: " + counts + "; " + lifecycle + "; items in " + where
}

// metadata is the agent's view of the task.
type metadata struct {
	task      agent.TaskMetadata
	container agent.ContainerMetadata
}

// taskMetadata builds the task metadata v4 answers for the run, with Fargate-shaped ids.
func taskMetadata(td *secrets.TaskDefinition, cd secrets.ContainerDefinition, p provisioned, o options, image string) (metadata, error) {
	taskID, err := agent.RandomHex(16)
	if err != nil {
		return metadata{}, err
	}
	cid, err := agent.RandomHex(16)
	if err != nil {
		return metadata{}, err
	}
	cpu, mem := taskSize(td.Cpu, td.Memory)
	prefix := fmt.Sprintf("arn:%s:ecs:%s:%s:", p.Partition, o.Region, p.Account)
	cluster := prefix + "cluster/" + o.App
	taskARN := prefix + "task/" + o.App + "/" + taskID
	now := time.Now().UTC()
	containerMem := mem
	if cd.Memory != nil {
		containerMem = *cd.Memory
	}
	c := agent.ContainerMetadata{
		DockerID:   taskID + "-" + strconv.FormatUint(uint64(now.UnixNano()%4e9), 10),
		Name:       cd.Name,
		DockerName: cd.Name,
		Image:      image,
		Labels: map[string]string{
			"com.amazonaws.ecs.cluster":                 cluster,
			"com.amazonaws.ecs.container-name":          cd.Name,
			"com.amazonaws.ecs.task-arn":                taskARN,
			"com.amazonaws.ecs.task-definition-family":  td.Family,
			"com.amazonaws.ecs.task-definition-version": "1",
		},
		DesiredStatus: "RUNNING",
		KnownStatus:   "PENDING",
		Limits:        agent.Limits{CPU: cpu * 1024, Memory: containerMem},
		CreatedAt:     &now,
		Type:          "NORMAL",
		ContainerARN:  prefix + "container/" + o.App + "/" + taskID + "/" + cid,
		Networks:      []agent.Network{{NetworkMode: "awsvpc", IPv4Addresses: []string{"127.0.0.1"}}},
	}
	t := agent.TaskMetadata{
		Cluster:          cluster,
		TaskARN:          taskARN,
		Family:           td.Family,
		Revision:         "1",
		DesiredStatus:    "RUNNING",
		KnownStatus:      "PENDING",
		Limits:           agent.Limits{CPU: cpu, Memory: mem},
		PullStartedAt:    &now,
		PullStoppedAt:    &now,
		AvailabilityZone: o.Region + "a",
		LaunchType:       "FARGATE",
	}
	return metadata{task: t, container: c}, nil
}

// taskSize reads the task's cpu ("256" units or "0.25 vCPU") and memory ("512" MiB or
// "0.5 GB") as vCPU and MiB.
func taskSize(cpu, memory string) (float64, int) {
	var vcpu float64
	if v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.ToLower(cpu), "vcpu")), 64); err == nil {
		vcpu = v
		if !strings.Contains(strings.ToLower(cpu), "vcpu") {
			vcpu = v / 1024
		}
	}
	var mib int
	m := strings.ToLower(strings.TrimSpace(memory))
	if v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(m, "gb")), 64); err == nil {
		if strings.HasSuffix(m, "gb") {
			mib = int(v * 1024)
		} else {
			mib = int(v)
		}
	}
	return vcpu, mib
}
