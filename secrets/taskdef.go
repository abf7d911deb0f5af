package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/streammatch/streammatch/secrets/valuefrom"
)

// TaskDefinition is the part of an ECS RegisterTaskDefinition input that running the task
// locally needs. The JSON is the AWS CLI's --cli-input-json shape (camelCase names); fields not
// listed here are accepted and ignored, as a local run has no use for them.
type TaskDefinition struct {
	Family                  string                `json:"family"`
	TaskRoleArn             string                `json:"taskRoleArn"`
	ExecutionRoleArn        string                `json:"executionRoleArn"`
	NetworkMode             string                `json:"networkMode"`
	RequiresCompatibilities []string              `json:"requiresCompatibilities"`
	ContainerDefinitions    []ContainerDefinition `json:"containerDefinitions"`
	// Cpu and Memory are the task size. The API takes strings: CPU units ("256") or vCPU
	// ("0.25 vCPU"), MiB ("512") or GB ("0.5 GB").
	Cpu    string `json:"cpu"`
	Memory string `json:"memory"`
}

// ContainerDefinition is one container of a task definition. Pointers distinguish a field left
// out (ECS applies its default) from one set to the zero value.
type ContainerDefinition struct {
	Name                   string           `json:"name"`
	Image                  string           `json:"image"`
	Essential              *bool            `json:"essential"`
	User                   string           `json:"user"`
	ReadonlyRootFilesystem *bool            `json:"readonlyRootFilesystem"`
	Privileged             *bool            `json:"privileged"`
	PortMappings           []PortMapping    `json:"portMappings"`
	Environment            []EnvVar         `json:"environment"`
	Secrets                []Secret         `json:"secrets"`
	HealthCheck            *HealthCheck     `json:"healthCheck"`
	StopTimeout            *int             `json:"stopTimeout"`
	Memory                 *int             `json:"memory"`
	LinuxParameters        *LinuxParameters `json:"linuxParameters"`
}

// IsEssential reports whether the task stops when this container stops; ECS's default is true.
func (c ContainerDefinition) IsEssential() bool { return c.Essential == nil || *c.Essential }

// PortMapping publishes a container port. With awsvpc networking (Fargate) hostPort is either
// left out or equal to containerPort.
type PortMapping struct {
	ContainerPort int    `json:"containerPort"`
	HostPort      int    `json:"hostPort,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
	Name          string `json:"name,omitempty"`
	AppProtocol   string `json:"appProtocol,omitempty"`
}

// HealthCheck is the container health check that ECS runs inside the container. The durations
// are in seconds; nil means ECS's default (see the Default* constants).
type HealthCheck struct {
	Command     []string `json:"command"`
	Interval    *int     `json:"interval"`
	Timeout     *int     `json:"timeout"`
	Retries     *int     `json:"retries"`
	StartPeriod *int     `json:"startPeriod"`
}

// ECS's health check defaults, applied when a field is left out.
const (
	DefaultHealthCheckInterval    = 30 // seconds
	DefaultHealthCheckTimeout     = 5  // seconds
	DefaultHealthCheckRetries     = 3
	DefaultHealthCheckStartPeriod = 0 // seconds
	// DefaultStopTimeout is how long ECS waits after SIGTERM before SIGKILL, in seconds.
	DefaultStopTimeout = 30
	// maxFargateStopTimeout is Fargate's upper limit on stopTimeout, in seconds.
	maxFargateStopTimeout = 120
)

// LinuxParameters holds the Linux-specific settings this project cares about.
type LinuxParameters struct {
	InitProcessEnabled *bool         `json:"initProcessEnabled"`
	Capabilities       *Capabilities `json:"capabilities"`
}

// Capabilities adds or drops Linux capabilities.
type Capabilities struct {
	Add  []string `json:"add"`
	Drop []string `json:"drop"`
}

// MaxTaskDefinitionSize is ECS's limit on a task definition, measured as compacted JSON.
const MaxTaskDefinitionSize = 64 * 1024

// placeholderPattern matches ${NAME} placeholders.
var placeholderPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Placeholders returns the distinct ${NAME} placeholder names in text, in order of first use.
func Placeholders(text string) []string {
	var names []string
	for _, m := range placeholderPattern.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

// LoadTaskDefinition reads a RegisterTaskDefinition input JSON file, fills its ${NAME}
// placeholders from vars, decodes it and validates it as ECS would. A placeholder without a
// value in vars is an error that names every such placeholder, with one exception: when vars
// has no SECRET_SOURCES, a ${SECRET_SOURCES} environment value is rendered from the
// container's own secrets after the other placeholders are filled (see SecretSources), as
// scripts/register-taskdef.sh renders it. Values are inserted JSON-escaped, so a value cannot
// break the document's syntax. Every validation problem is reported at once in an
// *InvalidTaskDefinitionError.
func LoadTaskDefinition(path string, vars map[string]string) (*TaskDefinition, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read task definition: %w", err)
	}
	_, given := vars[SecretSourcesVar]
	renderSources := !given && slices.Contains(Placeholders(string(raw)), SecretSourcesVar)
	if renderSources {
		// Fill the placeholder with itself for now: it is replaced once the secrets it is
		// rendered from are known.
		vars = maps.Clone(vars)
		if vars == nil {
			vars = map[string]string{}
		}
		vars[SecretSourcesVar] = secretSourcesPlaceholder
	}
	filled, err := fillPlaceholders(string(raw), vars)
	if err != nil {
		return nil, fmt.Errorf("task definition %s: %w", path, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(filled)); err != nil {
		return nil, fmt.Errorf("task definition %s is not valid JSON: %w", path, err)
	}
	var td TaskDefinition
	if err := json.Unmarshal(compact.Bytes(), &td); err != nil {
		return nil, fmt.Errorf("task definition %s: %w", path, err)
	}
	size := compact.Len()
	if renderSources {
		grown, err := renderSecretSources(&td, strings.Count(compact.String(), secretSourcesPlaceholder))
		if err != nil {
			return nil, fmt.Errorf("task definition %s: %w", path, err)
		}
		size += grown
	}
	problems := validate(&td)
	if size > MaxTaskDefinitionSize {
		problems = append(problems, fmt.Sprintf("the task definition is %d bytes as compacted JSON, more than ECS's limit of %d (64 KiB)", size, MaxTaskDefinitionSize))
	}
	if len(problems) > 0 {
		return nil, &InvalidTaskDefinitionError{Path: path, Problems: problems}
	}
	return &td, nil
}

// SecretSourcesVar is the environment variable that tells the service where each of its
// secrets came from: a JSON object mapping each secret's name to the valueFrom of its entry in
// the container's secrets. It holds references, not values, so it is a plain environment
// variable. It exists because the alternative, ecs:DescribeTaskDefinition at run time, cannot
// be limited to one task definition (its Resource must be "*").
const SecretSourcesVar = "SECRET_SOURCES"

const secretSourcesPlaceholder = "${" + SecretSourcesVar + "}"

// SecretSources renders the SECRET_SOURCES value for a container's secrets: compact JSON,
// {"NAME":"valueFrom",...}, in the order of the secrets, without HTML escaping; byte for byte
// what scripts/register-taskdef.sh renders.
func SecretSources(list []Secret) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(s.Name))
		b.WriteByte(':')
		b.WriteString(jsonString(s.ValueFrom))
	}
	b.WriteByte('}')
	return b.String()
}

// renderSecretSources replaces each environment value "${SECRET_SOURCES}" with the rendering
// of its own container's secrets, and returns by how many bytes the compacted document grew.
// want is how often the placeholder occurs in the document: one that is not a whole
// environment value cannot be rendered, and is an error rather than text left in place.
func renderSecretSources(td *TaskDefinition, want int) (int, error) {
	replaced, grown := 0, 0
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		for j := range c.Environment {
			if c.Environment[j].Value != secretSourcesPlaceholder {
				continue
			}
			value := SecretSources(c.Secrets)
			c.Environment[j].Value = value
			replaced++
			// Inside the document the value is a JSON string: its quotes are escaped there.
			grown += len(jsonString(value)) - 2 - len(secretSourcesPlaceholder)
		}
	}
	if replaced != want {
		return 0, fmt.Errorf("placeholder %s appears outside an environment value of its own: it is rendered from the container's secrets, so it must be the whole value of an environment variable", secretSourcesPlaceholder)
	}
	return grown, nil
}

// jsonString returns s as a JSON string, quotes included, without HTML escaping.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

func fillPlaceholders(text string, vars map[string]string) (string, error) {
	var missing []string
	for _, name := range Placeholders(text) {
		if _, ok := vars[name]; !ok {
			missing = append(missing, "${"+name+"}")
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for placeholder %s", strings.Join(missing, ", "))
	}
	return placeholderPattern.ReplaceAllStringFunc(text, func(m string) string {
		v := vars[m[2:len(m)-1]]
		quoted, _ := json.Marshal(v) // marshalling a string cannot fail
		// Strip the quotes: the placeholder usually sits inside a JSON string already.
		return string(quoted[1 : len(quoted)-1])
	}), nil
}

// InvalidTaskDefinitionError lists every problem ECS would reject a task definition for.
type InvalidTaskDefinitionError struct {
	Path     string
	Problems []string
}

func (e *InvalidTaskDefinitionError) Error() string {
	return fmt.Sprintf("task definition %s is invalid: %s", e.Path, strings.Join(e.Problems, "; "))
}

var (
	familyPattern        = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	containerNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	iamRolePattern       = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
)

// fargateSizes lists the memory sizes (MiB) Fargate allows for each CPU size (units).
var fargateSizes = map[int]func(mib int) bool{
	256:   func(m int) bool { return m == 512 || m == 1024 || m == 2048 },
	512:   func(m int) bool { return m >= 1024 && m <= 4096 && m%1024 == 0 },
	1024:  func(m int) bool { return m >= 2048 && m <= 8192 && m%1024 == 0 },
	2048:  func(m int) bool { return m >= 4096 && m <= 16384 && m%1024 == 0 },
	4096:  func(m int) bool { return m >= 8192 && m <= 30720 && m%1024 == 0 },
	8192:  func(m int) bool { return m >= 16384 && m <= 61440 && m%4096 == 0 },
	16384: func(m int) bool { return m >= 32768 && m <= 122880 && m%8192 == 0 },
}

// validate returns, in the order of the document, every problem that would make ECS reject
// the task definition or the task fail to start on Fargate.
func validate(td *TaskDefinition) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if !familyPattern.MatchString(td.Family) {
		add("family %q must be 1 to 255 letters, digits, hyphens and underscores", td.Family)
	}
	for _, role := range []struct{ field, value string }{{"taskRoleArn", td.TaskRoleArn}, {"executionRoleArn", td.ExecutionRoleArn}} {
		if role.value != "" && !iamRolePattern.MatchString(role.value) {
			add("%s %q is not an IAM role ARN: want arn:aws:iam::123456789012:role/NAME", role.field, role.value)
		}
	}
	if td.ExecutionRoleArn == "" && hasSecrets(td) {
		add("executionRoleArn is missing: ECS reads secrets with the execution role, so a task with secrets needs one")
	}
	fargate := slices.Contains(td.RequiresCompatibilities, "FARGATE")
	if fargate {
		problems = append(problems, validateFargateTask(td)...)
	}

	if len(td.ContainerDefinitions) == 0 {
		add("containerDefinitions is empty: a task needs at least one container")
	}
	names := make(map[string]bool)
	essential := false
	for i, c := range td.ContainerDefinitions {
		where := fmt.Sprintf("containerDefinitions[%d]", i)
		if c.Name != "" {
			where += " (" + c.Name + ")"
		}
		if !containerNamePattern.MatchString(c.Name) {
			add("%s: name %q must be 1 to 255 letters, digits, hyphens and underscores", where, c.Name)
		} else if names[c.Name] {
			add("%s: container name %q is used twice", where, c.Name)
		}
		names[c.Name] = true
		if c.IsEssential() {
			essential = true
		}
		if c.Image == "" {
			add("%s: image is missing", where)
		}
		problems = append(problems, validateContainer(where, c, fargate || td.NetworkMode == "awsvpc")...)
		if fargate {
			if c.Privileged != nil && *c.Privileged {
				add("%s: privileged containers are not supported on Fargate", where)
			}
			if c.StopTimeout != nil && (*c.StopTimeout < 2 || *c.StopTimeout > maxFargateStopTimeout) {
				add("%s: stopTimeout %d is outside Fargate's 2 to %d seconds", where, *c.StopTimeout, maxFargateStopTimeout)
			}
		}
	}
	if len(td.ContainerDefinitions) > 0 && !essential {
		add("no container is essential: at least one container must have essential true")
	}
	return problems
}

func validateFargateTask(td *TaskDefinition) []string {
	var problems []string
	if td.NetworkMode != "awsvpc" {
		problems = append(problems, fmt.Sprintf("networkMode %q: Fargate requires awsvpc", td.NetworkMode))
	}
	cpu, cpuErr := parseCPU(td.Cpu)
	mem, memErr := parseMemory(td.Memory)
	switch {
	case cpuErr != nil:
		problems = append(problems, fmt.Sprintf("cpu %q: %v", td.Cpu, cpuErr))
	case fargateSizes[cpu] == nil:
		problems = append(problems, fmt.Sprintf("cpu %q is not a Fargate size: want 256, 512, 1024, 2048, 4096, 8192 or 16384", td.Cpu))
	}
	if memErr != nil {
		problems = append(problems, fmt.Sprintf("memory %q: %v", td.Memory, memErr))
	} else if allowed := fargateSizes[cpu]; cpuErr == nil && allowed != nil && !allowed(mem) {
		problems = append(problems, fmt.Sprintf("memory %q is not allowed with cpu %q on Fargate (e.g. cpu 256 takes memory 512, 1024 or 2048)", td.Memory, td.Cpu))
	}
	return problems
}

func hasSecrets(td *TaskDefinition) bool {
	for _, c := range td.ContainerDefinitions {
		if len(c.Secrets) > 0 {
			return true
		}
	}
	return false
}

// parseCPU reads a task cpu in units ("256") or vCPU ("0.25 vCPU").
func parseCPU(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("is required on Fargate: want CPU units such as 256")
	}
	if v, ok := strings.CutSuffix(strings.ToLower(s), "vcpu"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("want CPU units such as 256 or vCPU such as 0.25 vCPU")
		}
		return int(f * 1024), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("want CPU units such as 256 or vCPU such as 0.25 vCPU")
	}
	return n, nil
}

// parseMemory reads a task memory in MiB ("512") or GB ("0.5 GB").
func parseMemory(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("is required on Fargate: want MiB such as 512")
	}
	if v, ok := strings.CutSuffix(strings.ToLower(s), "gb"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("want MiB such as 512 or GB such as 0.5 GB")
		}
		return int(f * 1024), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("want MiB such as 512 or GB such as 0.5 GB")
	}
	return n, nil
}

func validateContainer(where string, c ContainerDefinition, awsvpc bool) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	envNames := make(map[string]bool)
	for j, e := range c.Environment {
		switch {
		case e.Name == "":
			add("%s: environment[%d] has no name", where, j)
		case envNames[e.Name]:
			add("%s: environment variable %s is set twice", where, e.Name)
		}
		envNames[e.Name] = true
	}
	secretNames := make(map[string]bool)
	for j, s := range c.Secrets {
		switch {
		case s.Name == "":
			add("%s: secrets[%d] has no name", where, j)
		case secretNames[s.Name]:
			add("%s: secret %s is set twice", where, s.Name)
		case envNames[s.Name]:
			add("%s: %s is both a secret and an environment variable: keep only the secret", where, s.Name)
		}
		secretNames[s.Name] = true
		if s.ValueFrom == "" {
			add("%s: secret %s has no valueFrom: want the ARN of a Secrets Manager secret, or the name or ARN of a Parameter Store parameter", where, s.Name)
		} else if _, err := valuefrom.Parse(s.ValueFrom); err != nil {
			add("%s: secret %s: %v", where, s.Name, err)
		}
	}
	for j, p := range c.PortMappings {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			add("%s: portMappings[%d].containerPort %d is not a port (1 to 65535)", where, j, p.ContainerPort)
		}
		if awsvpc && p.HostPort != 0 && p.HostPort != p.ContainerPort {
			add("%s: portMappings[%d].hostPort %d must equal containerPort %d with awsvpc networking", where, j, p.HostPort, p.ContainerPort)
		}
		if p.Protocol != "" && p.Protocol != "tcp" && p.Protocol != "udp" {
			add("%s: portMappings[%d].protocol %q: want tcp or udp", where, j, p.Protocol)
		}
	}
	if hc := c.HealthCheck; hc != nil {
		problems = append(problems, validateHealthCheck(where, hc)...)
	}
	if c.Memory != nil && *c.Memory < 6 {
		add("%s: memory %d MiB is below ECS's minimum of 6", where, *c.Memory)
	}
	return problems
}

func validateHealthCheck(where string, hc *HealthCheck) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch {
	case len(hc.Command) == 0:
		add(`%s: healthCheck.command is empty: want ["CMD", "/path/binary", "arg"] or ["CMD-SHELL", "command"]`, where)
	case hc.Command[0] != "CMD" && hc.Command[0] != "CMD-SHELL":
		add(`%s: healthCheck.command must begin with "CMD" or "CMD-SHELL", not %q`, where, hc.Command[0])
	case len(hc.Command) == 1:
		add("%s: healthCheck.command names no command after %q", where, hc.Command[0])
	}
	ranges := []struct {
		field    string
		v        *int
		min, max int
	}{
		{"interval", hc.Interval, 5, 300},
		{"timeout", hc.Timeout, 2, 60},
		{"retries", hc.Retries, 1, 10},
		{"startPeriod", hc.StartPeriod, 0, 300},
	}
	for _, r := range ranges {
		if r.v != nil && (*r.v < r.min || *r.v > r.max) {
			add("%s: healthCheck.%s %d is outside ECS's %d to %d", where, r.field, *r.v, r.min, r.max)
		}
	}
	return problems
}

// Finding is one hardening problem Lint reports. It is advice, not an ECS error: the task
// would run, but less safely.
type Finding struct {
	// Container is the container definition's name, empty for a finding about the task.
	Container string
	// Rule is a short, stable identifier, e.g. "credential-in-environment".
	Rule string
	// Message says what is wrong and what to do instead. It quotes names, never values.
	Message string
}

func (f Finding) String() string {
	if f.Container == "" {
		return "task: " + f.Rule + ": " + f.Message
	}
	return "container " + f.Container + ": " + f.Rule + ": " + f.Message
}

// The Lint rules.
const (
	RuleCredentialInEnvironment = "credential-in-environment"
	RuleWritableRootFilesystem  = "writable-root-filesystem"
	RuleRootUser                = "root-user"
	RulePrivileged              = "privileged"
	RuleSecretNotByValueFrom    = "secret-not-by-valuefrom"
	RuleHostNetwork             = "host-network"
	RuleSecretSources           = "secret-sources"
)

// credentialWords are the word parts of an environment variable name that suggest it holds a
// credential. A plain environment value is readable by anyone allowed
// ecs:DescribeTaskDefinition; a credential belongs in secrets.
var credentialWords = []string{"KEY", "SECRET", "TOKEN", "PASSWORD"}

// secretReferencePattern matches an environment value that points at a secret store instead
// of holding a plain setting: a Secrets Manager or Parameter Store ARN, or a CloudFormation
// dynamic reference (which CloudFormation resolves into the task definition in plain text).
var secretReferencePattern = regexp.MustCompile(`arn:aws[a-z-]*:secretsmanager:|arn:aws[a-z-]*:ssm:[^:]*:[^:]*:parameter/|\{\{resolve:(secretsmanager|ssm-secure|ssm):`)

// Lint checks a task definition against the hardening rules that AWS Security Hub applies to
// ECS task definitions, for every container:
//   - no credential-looking name (a word part KEY, SECRET, TOKEN or PASSWORD, in any case) in
//     environment: such values belong in secrets;
//   - readonlyRootFilesystem is true;
//   - user is set and is neither root nor uid 0;
//   - not privileged;
//   - no secret referenced other than by valueFrom (a secret ARN or a {{resolve:...}} in an
//     environment value means the app or CloudFormation fetches it instead of ECS);
//   - no host networking for the task;
//
// and one rule of this project: a container with secrets has SECRET_SOURCES in its
// environment, a JSON object that names exactly its secrets with exactly their valueFrom (see
// SecretSources). SECRET_SOURCES holds references, not values, so the two environment rules
// above do not apply to it.
func Lint(td *TaskDefinition) []Finding {
	var findings []Finding
	if td.NetworkMode == "host" {
		findings = append(findings, Finding{Rule: RuleHostNetwork,
			Message: `the task uses networkMode "host", which shares the host's network namespace: use awsvpc`})
	}
	for _, c := range td.ContainerDefinitions {
		add := func(rule, format string, args ...any) {
			findings = append(findings, Finding{Container: c.Name, Rule: rule, Message: fmt.Sprintf(format, args...)})
		}
		var sources *EnvVar
		for _, e := range c.Environment {
			if e.Name == SecretSourcesVar {
				sources = &e
				continue
			}
			if word, ok := credentialWord(e.Name); ok {
				add(RuleCredentialInEnvironment, "environment variable %s looks like a credential (%q): move it to secrets with a valueFrom", e.Name, word)
			}
			if secretReferencePattern.MatchString(e.Value) {
				add(RuleSecretNotByValueFrom, "environment variable %s refers to a secret in its value: reference secrets with secrets[].valueFrom so that ECS injects them with the execution role", e.Name)
			}
		}
		if c.ReadonlyRootFilesystem == nil || !*c.ReadonlyRootFilesystem {
			add(RuleWritableRootFilesystem, "readonlyRootFilesystem is not true: set it, and mount a volume for any path the app must write")
		}
		if isRootUser(c.User) {
			if c.User == "" {
				add(RuleRootUser, "user is not set, so the image's user applies, often root: set a non-root user such as 65532")
			} else {
				add(RuleRootUser, "user %q is root: set a non-root user such as 65532", c.User)
			}
		}
		if c.Privileged != nil && *c.Privileged {
			add(RulePrivileged, "privileged is true, which gives the container root on the host: remove it")
		}
		if msg := checkSecretSources(c.Secrets, sources); msg != "" {
			add(RuleSecretSources, "%s", msg)
		}
	}
	return findings
}

// checkSecretSources says how the SECRET_SOURCES environment entry (nil when there is none)
// disagrees with the container's secrets, or returns "" when it names exactly the same
// secrets with the same valueFrom. The message names secrets, never quotes the value.
func checkSecretSources(list []Secret, sources *EnvVar) string {
	const fix = "render it from secrets, as scripts/register-taskdef.sh does, so that the service can say where each secret came from"
	if sources == nil {
		if len(list) == 0 {
			return ""
		}
		return fmt.Sprintf(`environment has no %s: add {"name": "%s", "value": "%s"} and %s`,
			SecretSourcesVar, SecretSourcesVar, secretSourcesPlaceholder, fix)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(sources.Value), &got); err != nil || got == nil {
		return fmt.Sprintf(`%s is not a JSON object of strings ({"NAME":"valueFrom",...}): %s`, SecretSourcesVar, fix)
	}
	var differences []string
	want := make(map[string]bool, len(list))
	for _, s := range list {
		want[s.Name] = true
		switch v, ok := got[s.Name]; {
		case !ok:
			differences = append(differences, "it lacks the secret "+s.Name)
		case v != s.ValueFrom:
			differences = append(differences, "its valueFrom for "+s.Name+" is not the one in secrets")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if !want[name] {
			differences = append(differences, "it names "+name+", which is not among the secrets")
		}
	}
	if len(differences) == 0 {
		return ""
	}
	return fmt.Sprintf("%s differs from secrets (%s): %s", SecretSourcesVar, strings.Join(differences, "; "), fix)
}

// credentialWord returns the credential word that appears in a word part of name. Word parts
// are split at anything that is not a letter, at digits, and at lower-to-upper case changes, so
// API_KEY, apiKey and KEY2 match. A part also matches when it ends in a credential word after at
// least four other letters: the blog's run-together names (CONSUMERKEY, ACCESSTOKEN,
// CONSUMERSECRETKEY, ACCESSTOKENSECRET) are exactly the ones most likely to be moved into
// `environment` by mistake. MONKEY, TURKEY and KEYBOARD_LAYOUT do not match. A plural part
// (KEYS, SECRETS) matches too.
func credentialWord(name string) (string, bool) {
	const minPrefix = 4
	for _, part := range wordParts(name) {
		upper := strings.TrimSuffix(strings.ToUpper(part), "S")
		for _, w := range credentialWords {
			if upper == w || (strings.HasSuffix(upper, w) && len(upper)-len(w) >= minPrefix) {
				return w, true
			}
		}
	}
	return "", false
}

func wordParts(name string) []string {
	runes := []rune(name)
	var parts []string
	start := -1
	for i, r := range runes {
		if !unicode.IsLetter(r) {
			if start >= 0 {
				parts = append(parts, string(runes[start:i]))
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		prev := runes[i-1]
		nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
		// "apiKey" splits before K; "APIKey" splits before K too (an acronym ends where an
		// upper-case letter starts a lower-case word).
		if unicode.IsUpper(r) && (unicode.IsLower(prev) || (unicode.IsUpper(prev) && nextLower)) {
			parts = append(parts, string(runes[start:i]))
			start = i
		}
	}
	if start >= 0 {
		parts = append(parts, string(runes[start:]))
	}
	return parts
}

// isRootUser reports whether a container definition's user ("user", "uid", "user:group" or
// "uid:gid") runs as root, an empty user included: the image's default is usually root.
func isRootUser(user string) bool {
	u, _, _ := strings.Cut(user, ":")
	return u == "" || u == "root" || u == "0"
}
