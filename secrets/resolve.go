package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/streammatch/streammatch/secrets/valuefrom"
)

// Secret is one entry of a container definition's secrets: the environment variable Name
// receives the value that ValueFrom points at.
type Secret struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}

// EnvVar is one environment entry, as in a container definition's environment or as Resolve
// returns it. Its String and GoString print the name only, so that logging or printing a
// resolved environment (%v, %+v, %#v, a test's got/want) never shows a secret; read Value to
// get the value.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// String returns "NAME=[value hidden]".
func (e EnvVar) String() string { return e.Name + "=[value hidden]" }

// GoString keeps %#v from printing the value, as String does for %v.
func (e EnvVar) GoString() string {
	return fmt.Sprintf("secrets.EnvVar{Name:%q, Value:[hidden, %d bytes]}", e.Name, len(e.Value))
}

// retries is how many times a failed retrieval is tried again. Fargate's stopped reason says
// "service call has been retried 1 time(s)"; retrying once for real keeps that text true.
const retries = 1

// maxParametersPerCall is ssm:GetParameters' limit on names per call, the agent's MaxBatchNum.
const maxParametersPerCall = 10

// Resolver fetches the values that container definition secrets point at, as the ECS agent
// does before it starts a container. Build it with the execution role's credentials: that role,
// not the task role, is what ECS reads secrets with, so a resolver built that way proves the
// execution role's policy is enough and the task role needs no access to the secrets.
// A Resolver is safe for concurrent use.
type Resolver struct {
	secretsManager secretsManagerAPI
	parameters     parameterStoreAPI
	identity       callerIdentityAPI
	// region is where parameter names (which carry no region) are read: the task's region.
	region string
}

// NewResolver returns a Resolver whose clients use cfg: its credentials (the execution role's),
// its region for parameter names, and its endpoint (an emulator's, when running locally).
func NewResolver(cfg aws.Config) *Resolver {
	return newResolver(secretsmanager.NewFromConfig(cfg), ssm.NewFromConfig(cfg), sts.NewFromConfig(cfg), cfg.Region)
}

func newResolver(sm secretsManagerAPI, ps parameterStoreAPI, id callerIdentityAPI, region string) *Resolver {
	return &Resolver{secretsManager: sm, parameters: ps, identity: id, region: region}
}

// Resolve returns the environment entries for a container definition's secrets, in the order
// given. It behaves like the ECS agent:
//   - values are fetched once, when called (a rotation later does not change them; ECS needs a
//     new task for that);
//   - only SecretString is used; a binary secret is an error;
//   - a JSON key is read by decoding the secret into map[string]interface{} and rendering the
//     value with fmt.Sprintf("%v"), quirks included (see jsonKeyValue);
//   - Parameter Store values come from ssm:GetParameters with WithDecryption, so SecureString
//     parameters arrive decrypted, at most 10 names per call, and the InvalidParameters of the
//     answer are failures.
//
// When any reference fails, Resolve returns no environment and a *ResolveError listing every
// failing reference (not only the first) in the agent's wording: the task must not start.
// No error ever contains a secret value. When ctx ends first, the error wraps ctx.Err().
func (r *Resolver) Resolve(ctx context.Context, secrets []Secret) ([]EnvVar, error) {
	refs := make([]valuefrom.Ref, len(secrets))
	failures := make([]*Failure, len(secrets))
	var pending []int
	for i, s := range secrets {
		ref, err := valuefrom.Parse(s.ValueFrom)
		if err != nil {
			// The agent's words for a valueFrom it cannot use (retrieveASMSecretValue).
			failures[i] = &Failure{Name: s.Name, ValueFrom: s.ValueFrom, Store: guessStore(s.ValueFrom),
				Reason: fmt.Sprintf("trying to retrieve secret with value %s resulted in error: %v", s.ValueFrom, err)}
			continue
		}
		refs[i] = ref
		pending = append(pending, i)
	}

	values := make([]string, len(secrets))
	var failed map[int]fetchFailure
	for attempt := 0; attempt <= retries && len(pending) > 0; attempt++ {
		var got map[int]string
		got, failed = r.fetch(ctx, refs, pending)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("resolve secrets: %w", err)
		}
		for i, v := range got {
			values[i] = v
		}
		pending = pending[:0]
		for i := range refs {
			if _, ok := failed[i]; ok {
				pending = append(pending, i)
			}
		}
	}
	for _, i := range pending {
		f := failed[i]
		failures[i] = &Failure{Name: secrets[i].Name, ValueFrom: secrets[i].ValueFrom, Store: refs[i].Store,
			Reason: f.reason, Retries: retries, Err: f.err}
	}

	var resolveErr ResolveError
	for _, f := range failures {
		if f != nil {
			resolveErr.Failures = append(resolveErr.Failures, *f)
		}
	}
	if len(resolveErr.Failures) > 0 {
		return nil, &resolveErr
	}
	env := make([]EnvVar, len(secrets))
	for i, s := range secrets {
		env[i] = EnvVar{Name: s.Name, Value: values[i]}
	}
	return env, nil
}

// fetchFailure is why one reference could not be resolved in one attempt.
type fetchFailure struct {
	reason string
	err    error
}

// fetch resolves refs[i] for each i in idx, returning the values and the failures by index.
func (r *Resolver) fetch(ctx context.Context, refs []valuefrom.Ref, idx []int) (map[int]string, map[int]fetchFailure) {
	got := make(map[int]string)
	failed := make(map[int]fetchFailure)
	var fromSecrets, fromParameters []int
	for _, i := range idx {
		if refs[i].Store == valuefrom.SecretsManager {
			fromSecrets = append(fromSecrets, i)
		} else {
			fromParameters = append(fromParameters, i)
		}
	}
	r.fetchSecrets(ctx, refs, fromSecrets, got, failed)
	r.fetchParameters(ctx, refs, fromParameters, got, failed)
	return got, failed
}

// secretVersionKey identifies one secret version. References that differ only in their JSON
// key share one GetSecretValue call, so every key of a container comes from the same version
// even if the secret is rotated while the task starts.
type secretVersionKey struct{ id, region, stage, versionID string }

func (r *Resolver) fetchSecrets(ctx context.Context, refs []valuefrom.Ref, idx []int, got map[int]string, failed map[int]fetchFailure) {
	var order []secretVersionKey
	groups := make(map[secretVersionKey][]int)
	for _, i := range idx {
		k := secretVersionKey{refs[i].ID, refs[i].Region, refs[i].VersionStage, refs[i].VersionID}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		in := &secretsmanager.GetSecretValueInput{
			SecretId:     aws.String(k.id),
			VersionStage: nonEmpty(k.stage),
			VersionId:    nonEmpty(k.versionID),
		}
		// The agent makes a client per secret region; a per-call region does the same.
		out, err := r.secretsManager.GetSecretValue(ctx, in, func(o *secretsmanager.Options) { o.Region = k.region })
		for _, i := range groups[k] {
			ref := refs[i]
			switch {
			case err != nil:
				// Fargate's wording. The SDK error names the operation, the status and
				// the service's message, none of which contains the value.
				failed[i] = fetchFailure{reason: fmt.Sprintf("failed to fetch secret %s from secrets manager: %v", describeSecret(ref), err), err: err}
			case out.SecretString == nil:
				// The agent would inject an empty string (or crash, with a JSON key); ECS
				// documents environment injection for string secrets only.
				failed[i] = fetchFailure{reason: fmt.Sprintf("secret %s: retrieved secret from Secrets Manager has no SecretString: a binary secret cannot be injected as an environment variable", describeSecret(ref))}
			case ref.JSONKey == "":
				got[i] = *out.SecretString
			default:
				v, reason := jsonKeyValue(*out.SecretString, ref.JSONKey)
				if reason != "" {
					failed[i] = fetchFailure{reason: fmt.Sprintf("secret %s: %s", describeSecret(ref), reason)}
					continue
				}
				got[i] = v
			}
		}
	}
}

// jsonKeyValue reads key from a JSON secret exactly as the agent's GetSecretFromASMWithInput
// does (aws/amazon-ecs-agent agent/asm/asm.go): decode into map[string]interface{} and render
// the value with fmt.Sprintf("%v"). That rendering is not JSON and is reproduced on purpose,
// because a container must see what ECS would give it:
//   - every number is a float64: 42 stays "42", but 1234567 becomes "1.234567e+06" and 1.50
//     becomes "1.5";
//   - an object renders in Go map syntax with sorted keys, {"b":1,"a":"x"} as "map[a:x b:1]";
//   - an array renders as "[1 2]", null as "<nil>", true as "true".
//
// The second result is the failure reason, "" on success. When the secret is not a JSON
// object the agent returns the decoder's error, which can quote a character of the value; this
// reason says only that the secret is not JSON.
func jsonKeyValue(secretString, key string) (string, string) {
	m := make(map[string]interface{})
	if err := json.Unmarshal([]byte(secretString), &m); err != nil {
		return "", "retrieved secret from Secrets Manager is not a JSON object, so it has no json key " + key
	}
	v, ok := m[key]
	if !ok {
		return "", "retrieved secret from Secrets Manager did not contain json key " + key
	}
	return fmt.Sprintf("%v", v), ""
}

// describeSecret names the secret a reference reads and, when it picks one, the version.
func describeSecret(ref valuefrom.Ref) string {
	switch {
	case ref.VersionID != "":
		return ref.ID + " (version id " + ref.VersionID + ")"
	case ref.VersionStage != "":
		return ref.ID + " (version stage " + ref.VersionStage + ")"
	default:
		return ref.ID
	}
}

func (r *Resolver) fetchParameters(ctx context.Context, refs []valuefrom.Ref, idx []int, got map[int]string, failed map[int]fetchFailure) {
	// Like the agent, group by region (a parameter ARN carries its own) and batch by name.
	var regions []string
	byRegion := make(map[string][]int)
	for _, i := range idx {
		region := refs[i].Region
		if region == "" {
			region = r.region
		}
		if _, ok := byRegion[region]; !ok {
			regions = append(regions, region)
		}
		byRegion[region] = append(byRegion[region], i)
	}
	account := callerAccount{api: r.identity}
	for _, region := range regions {
		var ids []string
		refsByID := make(map[string]valuefrom.Ref)
		for _, i := range byRegion[region] {
			if _, ok := refsByID[refs[i].ID]; !ok {
				ids = append(ids, refs[i].ID)
				refsByID[refs[i].ID] = refs[i]
			}
		}
		values := make(map[string]string)
		problems := make(map[string]fetchFailure)
		for start := 0; start < len(ids); start += maxParametersPerCall {
			batch := ids[start:min(start+maxParametersPerCall, len(ids))]
			r.getParameters(ctx, region, batch, refsByID, &account, values, problems)
		}
		for _, i := range byRegion[region] {
			if v, ok := values[refs[i].ID]; ok {
				got[i] = v
			} else {
				failed[i] = problems[refs[i].ID]
			}
		}
	}
}

// getParameters reads one batch of at most ten parameters of one region into values (by the
// ID asked for) and records a failure in problems for every ID it could not read.
func (r *Resolver) getParameters(ctx context.Context, region string, batch []string, refsByID map[string]valuefrom.Ref, account *callerAccount, values map[string]string, problems map[string]fetchFailure) {
	where := "fetching secret data from SSM Parameter Store in " + region
	out, err := r.parameters.GetParameters(ctx, &ssm.GetParametersInput{Names: batch, WithDecryption: aws.Bool(true)},
		func(o *ssm.Options) { o.Region = region })
	if err != nil {
		for _, id := range batch {
			problems[id] = fetchFailure{reason: fmt.Sprintf("%s: %v", where, err), err: err}
		}
		return
	}
	found := parametersByName(out)

	// The agent sends a parameter ARN as it is, and so does this resolver first. Some
	// emulators (moto 5) know parameters only by name and report an ARN as invalid; when the
	// ARN is in the caller's own account and names the region being asked, its name denotes
	// the same parameter, so ask again by name. An ARN of another account is never retried by
	// name: that would read a same-named parameter of the wrong account.
	byName := make(map[string]string)
	for _, id := range out.InvalidParameters {
		if ref, ok := refsByID[id]; ok && ref.Region != "" && ref.Account == account.get(ctx) {
			byName[ref.Name] = id
		}
	}
	if len(byName) > 0 {
		names := slices.Sorted(maps.Keys(byName))
		retry, err := r.parameters.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)},
			func(o *ssm.Options) { o.Region = region })
		if err == nil {
			for name, v := range parametersByName(retry) {
				if id, ok := byName[name]; ok {
					found[id] = v
				}
			}
		}
	}

	for _, id := range batch {
		if v, ok := found[id]; ok {
			values[id] = v
			continue
		}
		// The agent's words (agent/ssm/ssm.go extractSSMValues). A parameter that is
		// neither returned nor reported invalid is treated the same way.
		problems[id] = fetchFailure{reason: fmt.Sprintf("%s: invalid parameters: %s", where, id)}
	}
}

// parametersByName indexes a GetParameters answer by each parameter's Name and ARN, so that a
// name or an ARN asked for finds its value whichever of the two the service echoes in Name.
func parametersByName(out *ssm.GetParametersOutput) map[string]string {
	found := make(map[string]string)
	for _, p := range out.Parameters {
		v := aws.ToString(p.Value)
		if p.Name != nil {
			found[*p.Name] = v
		}
		if p.ARN != nil {
			found[*p.ARN] = v
		}
	}
	return found
}

// callerAccount asks STS for the caller's account once, on first use, and remembers the
// answer ("" when the call fails, which disables the by-name retry).
type callerAccount struct {
	api     callerIdentityAPI
	asked   bool
	account string
}

func (c *callerAccount) get(ctx context.Context) string {
	if !c.asked {
		c.asked = true
		if c.api != nil {
			if out, err := c.api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
				c.account = aws.ToString(out.Account)
			}
		}
	}
	return c.account
}

// guessStore says which service a valueFrom that does not parse was probably meant for, so
// that its failure reads like the agent's for that service.
func guessStore(valueFrom string) valuefrom.Store {
	if strings.Contains(valueFrom, ":secretsmanager:") {
		return valuefrom.SecretsManager
	}
	return valuefrom.ParameterStore
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// Failure is one secret that could not be resolved.
type Failure struct {
	// Name is the environment variable the secret was for.
	Name string
	// ValueFrom is the reference as written in the task definition.
	ValueFrom string
	// Store is the service the reference points into.
	Store valuefrom.Store
	// Reason says what went wrong in the agent's words, with the secret's ARN or the
	// parameter's name and, for a JSON key, the key. It never contains a value.
	Reason string
	// Retries is how many times the service call was retried; 0 when the reference failed
	// before any call (it does not parse).
	Retries int
	// Err is the service's error when there was one (for errors.As), nil when the call
	// succeeded but the answer could not be used.
	Err error
}

// String renders the failure as the part of a stopped reason the agent writes for it.
func (f Failure) String() string {
	var b strings.Builder
	if f.Store == valuefrom.SecretsManager {
		b.WriteString("unable to retrieve secret from asm: ")
	} else {
		b.WriteString("unable to retrieve secrets from ssm: ")
	}
	if f.Retries > 0 {
		fmt.Fprintf(&b, "service call has been retried %d time(s): ", f.Retries)
	}
	b.WriteString(f.Reason)
	return b.String()
}

// ResolveError reports every secret of a container that could not be resolved. Like ECS, the
// caller must not start the container.
type ResolveError struct {
	Failures []Failure
}

// Error reads like the stopped reason of a task whose secrets ECS could not pull, e.g.
//
//	ResourceInitializationError: unable to pull secrets or registry auth: execution resource
//	retrieval failed: unable to retrieve secret from asm: service call has been retried 1
//	time(s): secret arn:aws:secretsmanager:...:secret:NAME-AbCdEf: retrieved secret from Secrets
//	Manager did not contain json key CONSUMERKEY
//
// with the failures joined by "; " (as the agent joins its errors) and repeats left out.
func (e *ResolveError) Error() string {
	var parts []string
	seen := make(map[string]bool)
	for _, f := range e.Failures {
		s := f.String()
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: " + strings.Join(parts, "; ")
}

// Unwrap returns the service errors behind the failures, so that errors.As can find, e.g., a
// *types.ResourceNotFoundException.
func (e *ResolveError) Unwrap() []error {
	var errs []error
	for _, f := range e.Failures {
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return errs
}
