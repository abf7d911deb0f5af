package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Pinned images for the container routes to an AWS endpoint. They are pinned exactly so that a
// run next month starts the same emulator as today. LocalStack images released since March 2026
// (and `latest`) refuse to start without LOCALSTACK_AUTH_TOKEN; 4.14.0 is from before that.
const (
	defaultLocalStackImage = "localstack/localstack:4.14.0"
	defaultMotoImage       = "motoserver/moto:5.1.0"
)

// options are the command-line flags, checked and turned into plain values.
type options struct {
	AWS             string // auto, moto, localstack or an endpoint URL
	Run             string // auto, process or container
	Network         string // auto, bridge or host (container mode)
	TaskDef         string
	SecretsFile     string
	Addr            string
	For             time.Duration
	Rate            float64
	Corpus          string
	Loop            bool
	NoticeEvery     int
	KeepAlive       time.Duration
	Filter          string
	Source          string
	Table           string
	App             string
	Region          string
	Image           string
	Vars            map[string]string
	LocalStackImage string
	MotoImage       string
	Quiet           bool
	RotateAfter     time.Duration // 0: never rotate
	RotationCheck   time.Duration // the app's ROTATION_CHECK_INTERVAL; 0 turns the check off
	Service         bool
}

// varFlag collects repeated -var NAME=VALUE flags.
type varFlag map[string]string

func (v varFlag) String() string { return "" }

func (v varFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return errors.New("want NAME=VALUE")
	}
	v[name] = value
	return nil
}

const usageHead = `go run ./local runs the whole streammatch Fargate task on this machine, doing what ECS does:

  1. an AWS endpoint: moto_server, LocalStack, a motoserver/moto container, or one you name;
  2. provisioning in it: the secret streammatch/SOURCE (one JSON object with the source's
     credentials: the four Twitter keys, X_BEARER_TOKEN or MASTODON_ACCESS_TOKEN), the DynamoDB
     table, the execution role (may read exactly that secret) and the task role (may write
     exactly that table, and describe that secret without reading it);
  3. the ECS agent's part, from the source's task definition (taskdef.json for twitter,
     deploy/taskdef.x.json, deploy/taskdef.mastodon.json): placeholders filled, secrets
     resolved with the execution role's credentials (a broken reference stops the run before
     the app starts), a container credentials endpoint serving the task role and a task
     metadata v4 endpoint;
  4. a stream simulator for -source: Twitter v1.1 statuses/filter (checks the OAuth 1.0a
     signature against the four secret values), X API v2's filtered stream with its rules
     endpoint, or Mastodon's streaming API (both check the bearer token); each sends
     synthetic posts that match -filter;
  5. the app itself, as a process or as a container built from the Dockerfile.

It prints the page URL and runs until Ctrl-C or -for, then stops the app with SIGTERM, tears
down everything it started and prints a summary.

The secret's lifecycle: the task role may also describe the secret (DescribeSecret,
ListSecretVersionIds: metadata, never the value), the app gets SECRET_SOURCES (where each
secret came from) and checks every -rotation-check whether the secret changed after it
started. -rotate-after 20s puts new random values in the secret mid-run (never printed) and
the page turns to "rotated"; add -service and local acts as an ECS service: the app exits on
the drift (ROTATION_ACTION=exit), and local resolves the secrets again with the execution role
and starts a new app, whose page shows the new fingerprints and "current".

Usage: go run ./local [flags]

Flags:
`

const usageTail = `
Stream simulator control (the URL is printed at start):
  GET  /_local/status                           simulator counters (JSON)
  POST /_local/fail?status=503&times=3          answer the next requests with a status
  POST /_local/disconnect?after=10&midline=1    drop connections after N more messages
  POST /_local/stall?after=0                    go silent (no keep-alives) after N messages
  POST /_local/clear                            disarm every fault
The fault controls are the Twitter simulator's; the X and Mastodon simulators answer status only.

Environment: AWS_ENDPOINT_URL (used by -aws auto), LOCALSTACK_AUTH_TOKEN (passed to LocalStack),
DOCKER_HOST (a Docker or podman socket), CONTAINERS_CONF (podman's configuration).
`

// parseOptions parses args. -h prints the usage to stdout and returns flag.ErrHelp.
func parseOptions(args []string, stdout, stderr io.Writer) (options, error) {
	o := options{Vars: map[string]string{}}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.AWS, "aws", "auto", "AWS endpoint: auto, moto, localstack, or a URL such as http://127.0.0.1:4566.\nauto takes AWS_ENDPOINT_URL, else moto_server on PATH, else a container engine\n(LocalStack when LOCALSTACK_AUTH_TOKEN is set, otherwise the motoserver/moto image)")
	fs.StringVar(&o.Run, "run", "auto", "how to start the app: process (go build, then exec), container (image from the\nDockerfile, run as ECS runs it), or auto (container when an engine answers)")
	fs.StringVar(&o.Network, "network", "auto", "container networking: bridge (the endpoints at 169.254.170.2, as on ECS; needs\nroot to add that address to lo), host (shares the host's network), or auto")
	fs.StringVar(&o.TaskDef, "taskdef", "", "the task definition (RegisterTaskDefinition JSON with ${NAME} placeholders); default\nthe source's, as the deploy scripts pick it: taskdef.json for twitter, deploy/taskdef.x.json,\ndeploy/taskdef.mastodon.json")
	fs.StringVar(&o.SecretsFile, "secrets", "", "dotenv file with the source's credentials (NAME=value lines): CONSUMERKEY,\nCONSUMERSECRETKEY, ACCESSTOKEN and ACCESSTOKENSECRET for twitter, X_BEARER_TOKEN for x,\nMASTODON_ACCESS_TOKEN for mastodon; without it random values are generated and never printed")
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "the address the status page is published on; port 0 picks a free port")
	fs.DurationVar(&o.For, "for", 0, "stop after this long, e.g. 20s (default: run until Ctrl-C)")
	fs.Float64Var(&o.Rate, "rate", 5, "synthetic tweets per second the simulator sends, before track filtering")
	fs.StringVar(&o.Corpus, "corpus", "", "replay this file instead of synthetic tweets: a v1.1 search result, a JSON array or NDJSON")
	fs.BoolVar(&o.Loop, "loop", true, "replay the corpus again when it ends")
	fs.IntVar(&o.NoticeEvery, "notice-every", 20, "mix a delete or limit notice in after every N tweets (0: none)")
	fs.DurationVar(&o.KeepAlive, "keepalive", 30*time.Second, "interval of the stream's keep-alive newlines")
	fs.StringVar(&o.Filter, "filter", "Cloud Computing", "the task's FILTER: comma-separated track phrases")
	fs.StringVar(&o.Source, "source", "twitter", "the task's SOURCE, and the stream simulator: twitter, x or mastodon")
	fs.StringVar(&o.Table, "table", "twitterStream", "the DynamoDB table")
	fs.StringVar(&o.App, "app", "streammatch", "APP_NAME: the task family, cluster, container and role names")
	fs.StringVar(&o.Region, "region", "us-east-1", "the AWS region in the emulator")
	fs.StringVar(&o.Image, "image", "", "container mode: run this image instead of building the Dockerfile")
	fs.Var(varFlag(o.Vars), "var", "NAME=VALUE for a taskdef placeholder local does not fill itself (repeatable)")
	fs.StringVar(&o.LocalStackImage, "localstack-image", defaultLocalStackImage, "the LocalStack image (pinned)")
	fs.StringVar(&o.MotoImage, "moto-image", defaultMotoImage, "the moto image used when moto_server is not on PATH (pinned)")
	fs.BoolVar(&o.Quiet, "quiet", false, "do not pass the app's log lines through")
	fs.DurationVar(&o.RotateAfter, "rotate-after", 0, "rotate the secret in the emulator this long after the app is healthy, e.g. 20s: new\nrandom values (never printed) become AWSCURRENT and the only ones the stream simulator\naccepts; the running app keeps the old ones until it is replaced")
	fs.DurationVar(&o.RotationCheck, "rotation-check", 5*time.Second, "the app's ROTATION_CHECK_INTERVAL: how often it checks whether its secret was rotated\n(0 turns the check off, else at least 1s)")
	fs.BoolVar(&o.Service, "service", false, "act as an ECS service (desiredCount 1): the app gets ROTATION_ACTION=exit, and whenever\nit exits (drift, crash) local resolves the secrets again with the execution role and\nstarts a new app, until Ctrl-C or -for")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(out, usageTail)
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return o, flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q; every setting is a flag (see -h)", fs.Args())
	}
	if err := o.check(); err != nil {
		return o, err
	}
	if o.TaskDef == "" {
		o.TaskDef = sourceTaskDefs[o.Source]
	}
	return o, nil
}

// sourceTaskDefs are the task definition templates of each source, relative to the repository,
// as scripts/lib.sh picks them (TASKDEF_FILE).
var sourceTaskDefs = map[string]string{
	"twitter":  "taskdef.json",
	"x":        "deploy/taskdef.x.json",
	"mastodon": "deploy/taskdef.mastodon.json",
}

// check reports every invalid flag at once.
func (o *options) check() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch o.AWS {
	case "auto", "moto", "localstack":
	default:
		if u, err := url.Parse(o.AWS); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("-aws %q: want auto, moto, localstack or an http(s) URL", o.AWS)
		}
	}
	switch o.Run {
	case "auto", "process", "container":
	default:
		add("-run %q: want auto, process or container", o.Run)
	}
	switch o.Network {
	case "auto", "bridge", "host":
	default:
		add("-network %q: want auto, bridge or host", o.Network)
	}
	if host, port, err := net.SplitHostPort(o.Addr); err != nil {
		add("-addr %q: want host:port, e.g. 127.0.0.1:8080", o.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("-addr %q: want a port from 0 to 65535", o.Addr)
	} else if host == "" {
		add("-addr %q: name the host, e.g. 127.0.0.1:%s (an empty host would publish the page on every interface)", o.Addr, port)
	}
	if o.For < 0 {
		add("-for %s: want a positive duration, e.g. 20s", o.For)
	}
	if o.Rate < 0 {
		add("-rate %v: want 0 or more tweets per second", o.Rate)
	}
	if o.KeepAlive <= 0 {
		add("-keepalive %s: want a positive duration", o.KeepAlive)
	}
	if o.RotateAfter < 0 {
		add("-rotate-after %s: want a positive duration, e.g. 20s", o.RotateAfter)
	} else if o.RotateAfter > 0 && o.For > 0 && o.RotateAfter >= o.For {
		add("-rotate-after %s: the run ends first (-for %s); want a shorter duration or a longer -for", o.RotateAfter, o.For)
	}
	if o.RotationCheck < 0 || (o.RotationCheck > 0 && o.RotationCheck < time.Second) {
		add("-rotation-check %s: want 0 (no check) or at least 1s, e.g. 5s", o.RotationCheck)
	}
	if o.NoticeEvery < 0 {
		add("-notice-every %d: want 0 or more", o.NoticeEvery)
	}
	if strings.TrimSpace(o.Filter) == "" {
		add("-filter is empty: want comma-separated track phrases")
	}
	if _, ok := sourceSecretKeys[o.Source]; !ok {
		add("-source %q: want twitter, x or mastodon", o.Source)
	}
	if o.Corpus != "" && o.Source != "twitter" {
		add("-corpus replays v1.1 tweets: it works with -source twitter only")
	}
	if o.Table == "" || o.App == "" || o.Region == "" {
		add("-table, -app and -region must not be empty")
	}
	if len(problems) > 0 {
		return errors.New("invalid flags:\n  - " + strings.Join(problems, "\n  - "))
	}
	return nil
}

// cpuArchitecture is the taskdef's runtimePlatform.cpuArchitecture for this machine.
func cpuArchitecture() string {
	if runtime.GOARCH == "arm64" {
		return "ARM64"
	}
	return "X86_64"
}
