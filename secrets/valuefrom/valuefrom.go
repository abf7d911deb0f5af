// Package valuefrom is the ECS agent's grammar for a container secret's valueFrom: a Secrets
// Manager ARN with optional JSON key, version stage and version id, or an SSM parameter name or
// ARN. It is pure (no AWS client), so that the service can name where each secret came from
// without linking the resolver in package secrets.
package valuefrom

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// Store names the AWS service a valueFrom reference points into.
type Store string

const (
	// SecretsManager is AWS Secrets Manager (the agent's provider "asm").
	SecretsManager Store = "secretsmanager"
	// ParameterStore is SSM Parameter Store (the agent's provider "ssm").
	ParameterStore Store = "ssm"
)

// DefaultVersionStage is the staging label Secrets Manager returns when a reference names
// neither a stage nor a version id. The agent leaves both out of GetSecretValue and lets the
// service apply this default, and so does Resolve.
const DefaultVersionStage = "AWSCURRENT"

// Ref is a parsed valueFrom: where a secret lives and which part of it to inject.
//
// The grammar is the ECS agent's. For Secrets Manager, valueFrom is always an ARN (the agent
// calls arn.Parse on it and gives up otherwise), and the ARN's resource is split on ':':
// "secret:NAME" is the whole secret, "secret:NAME:JSON_KEY:VERSION_STAGE:VERSION_ID" selects a
// JSON key and a version, and any other number of fields is an error. See
// aws/amazon-ecs-agent agent/taskresource/asmsecret/asmsecret.go (getASMParametersFromInput and
// reconstructASMARN). Anything that is not a Secrets Manager ARN goes to Parameter Store: the
// ECS control plane marks such secrets with provider "ssm", and the agent passes valueFrom
// unchanged to ssm:GetParameters (agent/taskresource/ssmsecret/ssmsecret.go). That is why a plain
// name is always a parameter name, never a secret name, as the ECS documentation says: "If the
// SSM Parameter Store parameter exists in the same Region as the task you're launching, then you
// can use either the full ARN or name of the parameter."
type Ref struct {
	// Store is the service to read from.
	Store Store
	// ID is what the service is asked for. For Secrets Manager it is the secret's ARN without
	// the selector fields: a full ARN (NAME ends in the six random characters Secrets Manager
	// appends, "-AbCdEf") or a partial one (NAME alone), both of which GetSecretValue accepts.
	// For Parameter Store it is valueFrom as written: a parameter name or ARN.
	ID string
	// Region and Account come from the ARN. Both are empty for a parameter name, which is
	// read in the task's own region and account.
	Region  string
	Account string
	// Name is the secret's name as the ARN spells it (with the random suffix when the ARN is
	// full), or the parameter's name (hierarchical names begin with '/').
	Name string
	// JSONKey, VersionStage and VersionID are the Secrets Manager selectors; all three are
	// empty when valueFrom names the whole secret, and at most one of VersionStage and
	// VersionID is set.
	JSONKey      string
	VersionStage string
	VersionID    string
}

// String renders r as a valueFrom that Parse turns back into r. A reference written
// with three empty selector fields ("...:secret:NAME:::") renders without them, because the
// agent treats both spellings the same way.
func (r Ref) String() string {
	if r.Store != SecretsManager || (r.JSONKey == "" && r.VersionStage == "" && r.VersionID == "") {
		return r.ID
	}
	return r.ID + ":" + r.JSONKey + ":" + r.VersionStage + ":" + r.VersionID
}

// EffectiveVersionStage is the staging label the reference reads: its own, AWSCURRENT when it
// names neither a stage nor a version id, and "" when it names a version id (whatever labels
// that version carries).
func (r Ref) EffectiveVersionStage() string {
	if r.Store != SecretsManager || r.VersionID != "" {
		return r.VersionStage
	}
	if r.VersionStage == "" {
		return DefaultVersionStage
	}
	return r.VersionStage
}

// The examples that error messages offer as a right value.
const (
	exampleSecretARN    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:NAME-AbCdEf"
	exampleSelectors    = exampleSecretARN + ":JSON_KEY:VERSION_STAGE:VERSION_ID (e.g. " + exampleSecretARN + ":password::)"
	exampleParameterARN = "arn:aws:ssm:us-east-1:123456789012:parameter/NAME"
	exampleAny          = "a Secrets Manager secret ARN (" + exampleSecretARN + "), a Parameter Store name (/path/NAME) or a Parameter Store ARN (" + exampleParameterARN + ")"
)

var (
	// partitions are the ARN partitions the brief supports: commercial, China and GovCloud.
	partitions = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true}
	// regionPattern is loose on purpose (new regions appear); it catches empty and garbled
	// regions, which no endpoint would serve.
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	// secretNamePattern is Secrets Manager's character set for secret names.
	secretNamePattern = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)
	// parameterSegmentPattern is Parameter Store's character set for a name or one level of a
	// hierarchical name.
	parameterSegmentPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// maxParameterNameLength is Parameter Store's limit on a name, ARN prefix included.
const maxParameterNameLength = 2048

// Parse parses a container definition secret's valueFrom the way the ECS agent does
// (see Ref). It is pure: it checks the grammar and nothing else, so a well-formed reference to
// a secret that does not exist parses fine and fails in Resolve. Errors quote valueFrom, which
// is a reference, never a secret value.
func Parse(valueFrom string) (Ref, error) {
	if valueFrom == "" {
		return Ref{}, fmt.Errorf("valueFrom is empty: want %s", exampleAny)
	}
	if strings.TrimSpace(valueFrom) != valueFrom {
		return Ref{}, fmt.Errorf("valueFrom %q has leading or trailing white space, which the service would take as part of the name: want %s", valueFrom, exampleAny)
	}
	if !strings.HasPrefix(valueFrom, "arn:") {
		return parseParameterName(valueFrom)
	}
	a, err := arn.Parse(valueFrom)
	if err != nil {
		return Ref{}, fmt.Errorf("valueFrom %q is not a valid ARN (%v): want arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, i.e. %s", valueFrom, err, exampleAny)
	}
	if !partitions[a.Partition] {
		return Ref{}, fmt.Errorf("valueFrom %q has partition %q: want aws, aws-cn or aws-us-gov", valueFrom, a.Partition)
	}
	if a.Service != "secretsmanager" && a.Service != "ssm" {
		return Ref{}, fmt.Errorf("valueFrom %q is an ARN of service %q: ECS reads secrets only from secretsmanager or ssm, want %s", valueFrom, a.Service, exampleAny)
	}
	if !regionPattern.MatchString(a.Region) {
		return Ref{}, fmt.Errorf("valueFrom %q has region %q: want a region such as us-east-1", valueFrom, a.Region)
	}
	if !accountPattern.MatchString(a.AccountID) {
		return Ref{}, fmt.Errorf("valueFrom %q has account %q: want the 12-digit account id", valueFrom, a.AccountID)
	}
	if a.Service == "secretsmanager" {
		return parseSecretARN(valueFrom, a)
	}
	return parseParameterARN(valueFrom, a)
}

// parseSecretARN mirrors getASMParametersFromInput in the agent's asmsecret.go: two ':'-separated
// resource fields name the whole secret, five add the selectors, anything else is an error.
func parseSecretARN(valueFrom string, a arn.ARN) (Ref, error) {
	fields := strings.Split(a.Resource, ":")
	if fields[0] != "secret" {
		return Ref{}, fmt.Errorf("valueFrom %q has resource type %q: a Secrets Manager ARN continues with secret:NAME, want %s", valueFrom, fields[0], exampleSecretARN)
	}
	if len(fields) != 2 && len(fields) != 5 {
		// The agent's own words for this case, followed by what would be right.
		return Ref{}, fmt.Errorf("valueFrom %q: an invalid ARN format for the AWS Secrets Manager secret was specified: "+
			"after the secret name give either nothing or exactly three fields, leaving unused ones empty but keeping their colons, want %s or %s",
			valueFrom, exampleSecretARN, exampleSelectors)
	}
	name := fields[1]
	if name == "" {
		return Ref{}, fmt.Errorf("valueFrom %q has an empty secret name: want %s", valueFrom, exampleSecretARN)
	}
	if !secretNamePattern.MatchString(name) {
		return Ref{}, fmt.Errorf("valueFrom %q has secret name %q with characters Secrets Manager does not allow: want letters, digits and /_+=.@-", valueFrom, name)
	}
	r := Ref{
		Store:   SecretsManager,
		Region:  a.Region,
		Account: a.AccountID,
		Name:    name,
		// reconstructASMARN in the agent: the ARN without the selector fields.
		ID: arn.ARN{Partition: a.Partition, Service: a.Service, Region: a.Region, AccountID: a.AccountID, Resource: "secret:" + name}.String(),
	}
	if len(fields) == 5 {
		r.JSONKey, r.VersionStage, r.VersionID = fields[2], fields[3], fields[4]
	}
	if r.VersionStage != "" && r.VersionID != "" {
		// The agent would send both and let GetSecretValue decide; the ECS documentation
		// forbids it ("If you use version-stage, don't specify version-id"), so say so here.
		return Ref{}, fmt.Errorf("valueFrom %q names both version stage %q and version id %q: they are mutually exclusive, keep one and leave the other empty, e.g. %s::AWSPREVIOUS: or %s:::VERSION_ID",
			valueFrom, r.VersionStage, r.VersionID, r.ID, r.ID)
	}
	return r, nil
}

// parseParameterARN accepts arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME. A hierarchical
// name "/a/b" appears in its ARN as parameter/a/b, so a name with a '/' gets its leading '/'
// back; a one-level name cannot be told apart from "/NAME" and is kept without one.
func parseParameterARN(valueFrom string, a arn.ARN) (Ref, error) {
	rest, ok := strings.CutPrefix(a.Resource, "parameter/")
	if !ok {
		return Ref{}, fmt.Errorf("valueFrom %q is an SSM ARN but not of a parameter: want %s", valueFrom, exampleParameterARN)
	}
	name := rest
	if strings.Contains(rest, "/") {
		name = "/" + rest
	}
	if err := checkParameterName(name); err != nil {
		return Ref{}, fmt.Errorf("valueFrom %q: %w, want %s", valueFrom, err, exampleParameterARN)
	}
	if len(valueFrom) > maxParameterNameLength {
		return Ref{}, fmt.Errorf("valueFrom %q is longer than Parameter Store's %d characters", valueFrom, maxParameterNameLength)
	}
	return Ref{Store: ParameterStore, ID: valueFrom, Region: a.Region, Account: a.AccountID, Name: name}, nil
}

// parseParameterName accepts a Parameter Store name as the agent passes it on: unchanged.
func parseParameterName(valueFrom string) (Ref, error) {
	if err := checkParameterName(valueFrom); err != nil {
		return Ref{}, fmt.Errorf("valueFrom %q is not an ARN, so ECS reads it as a Parameter Store name, but %w: want %s", valueFrom, err, exampleAny)
	}
	return Ref{Store: ParameterStore, ID: valueFrom, Name: valueFrom}, nil
}

// checkParameterName applies Parameter Store's naming rules, so that a typo is reported with
// the rule it breaks rather than as a parameter that does not exist.
func checkParameterName(name string) error {
	if len(name) > maxParameterNameLength {
		return fmt.Errorf("the parameter name is longer than %d characters", maxParameterNameLength)
	}
	if !strings.Contains(name, "/") {
		if !parameterSegmentPattern.MatchString(name) {
			return errors.New("a parameter name may contain only letters, digits and _.- (and '/' between the levels of a path)")
		}
		return nil
	}
	if !strings.HasPrefix(name, "/") {
		return errors.New("a parameter name with '/' is a path and must begin with '/'")
	}
	for _, level := range strings.Split(name[1:], "/") {
		if !parameterSegmentPattern.MatchString(level) {
			return errors.New("each level of a parameter path must be non-empty and contain only letters, digits and _.-")
		}
	}
	return nil
}
