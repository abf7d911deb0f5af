package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/streammatch/streammatch/scripts"
	"github.com/streammatch/streammatch/store"
)

// emulatorConfig is the configuration of local's own calls to the emulator. It is built by hand
// with the emulators' conventional dummy keys, never from the developer's environment or
// ~/.aws: whatever the flags, local can only ever talk to an emulator with keys that are worth
// nothing, and a real profile cannot leak into the run.
func emulatorConfig(endpoint, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// provisioned is what provision made or found.
type provisioned struct {
	Account          string
	Partition        string
	SecretARN        string
	TableARN         string
	ExecutionRoleARN string
	TaskRoleARN      string
}

// names derives the resource names from APP_NAME and SOURCE the way scripts/lib.sh does: the
// secret is the source's own, $APP_NAME/$SOURCE.
type names struct {
	Secret, Table, ExecutionRole, TaskRole, LogGroup string
}

func namesFor(app, source, table string) names {
	return names{
		Secret:        app + "/" + source,
		Table:         table,
		ExecutionRole: app + "-execution-role",
		TaskRole:      app + "-task-role",
		LogGroup:      "/ecs/" + app,
	}
}

// The inline policy names are those of scripts/create-roles.sh.
const (
	executionPolicyName = "pull-logs-secrets"
	taskPolicyName      = "dynamodb-write"
	// taskDescribePolicyName is the task role's second inline policy: the rotation drift
	// check's metadata-only access to the secret (DescribeSecret, ListSecretVersionIds).
	taskDescribePolicyName = "secrets-describe"
)

// inlinePolicy is one named inline policy of a role.
type inlinePolicy struct{ Name, Document string }

// provision creates, when absent, the secret, the table and both roles in the emulator, and
// brings them up to date when present, so a second run against the same endpoint changes
// nothing but the secret's value (which must be this run's, as the simulator checks it).
func provision(ctx context.Context, cfg aws.Config, n names, creds secretValues) (provisioned, error) {
	var p provisioned
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return p, fmt.Errorf("sts get-caller-identity: %w", err)
	}
	p.Account = aws.ToString(id.Account)
	p.Partition = "aws"
	if a, err := arn.Parse(aws.ToString(id.Arn)); err == nil {
		p.Partition = a.Partition
	}
	if p.SecretARN, err = ensureSecret(ctx, secretsmanager.NewFromConfig(cfg), n.Secret, creds); err != nil {
		return p, err
	}
	if p.TableARN, err = store.EnsureTable(ctx, dynamodb.NewFromConfig(cfg), n.Table); err != nil {
		return p, err
	}
	docs, err := localPolicies(p.Account, p.SecretARN, p.TableARN)
	if err != nil {
		return p, err
	}
	im := iam.NewFromConfig(cfg)
	if p.ExecutionRoleARN, err = ensureRole(ctx, im, n.ExecutionRole, docs.Trust, inlinePolicy{executionPolicyName, docs.Execution}); err != nil {
		return p, err
	}
	if p.TaskRoleARN, err = ensureRole(ctx, im, n.TaskRole, docs.Trust, inlinePolicy{taskPolicyName, docs.Task}, inlinePolicy{taskDescribePolicyName, docs.TaskDescribe}); err != nil {
		return p, err
	}
	return p, nil
}

// secretJSON is the secret's value: one JSON object with a key per secret variable of the
// source, as scripts/create-secrets.sh stores it.
func secretJSON(creds secretValues) (string, error) {
	b, err := json.Marshal(map[string]string(creds))
	if err != nil {
		return "", errors.New("encode the secret's JSON")
	}
	return string(b), nil
}

func ensureSecret(ctx context.Context, sm *secretsmanager.Client, name string, creds secretValues) (string, error) {
	value, err := secretJSON(creds)
	if err != nil {
		return "", err
	}
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:         aws.String(name),
			Description:  aws.String("stream credentials of the streammatch task (local run)"),
			SecretString: aws.String(value),
		})
		if err != nil {
			return "", fmt.Errorf("create secret %s: %w", name, err)
		}
		return aws.ToString(out.ARN), nil
	case err != nil:
		return "", fmt.Errorf("describe secret %s: %w", name, err)
	}
	if d.DeletedDate != nil {
		if _, err := sm.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: d.ARN}); err != nil {
			return "", fmt.Errorf("restore secret %s: %w", name, err)
		}
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: d.ARN, SecretString: aws.String(value)}); err != nil {
		return "", fmt.Errorf("put secret value %s: %w", name, err)
	}
	return aws.ToString(d.ARN), nil
}

// ensureRole creates the role when absent, else brings its trust policy up to date, and then
// sets its inline policies; both calls replace what is there, so a rerun changes nothing.
func ensureRole(ctx context.Context, im *iam.Client, name, trust string, policies ...inlinePolicy) (string, error) {
	var roleARN string
	got, err := im.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	var nf *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &nf):
		out, err := im.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 aws.String(name),
			AssumeRolePolicyDocument: aws.String(trust),
			Description:              aws.String("streammatch local run"),
		})
		if err != nil {
			return "", fmt.Errorf("create role %s: %w", name, err)
		}
		roleARN = aws.ToString(out.Role.Arn)
	case err != nil:
		return "", fmt.Errorf("get role %s: %w", name, err)
	default:
		roleARN = aws.ToString(got.Role.Arn)
		current, _ := url.QueryUnescape(aws.ToString(got.Role.AssumeRolePolicyDocument))
		if !sameJSON(current, trust) {
			if _, err := im.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(trust)}); err != nil {
				return "", fmt.Errorf("update trust policy of %s: %w", name, err)
			}
		}
	}
	for _, p := range policies {
		if _, err := im.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p.Name), PolicyDocument: aws.String(p.Document)}); err != nil {
			return "", fmt.Errorf("put policy %s on role %s: %w", p.Name, name, err)
		}
	}
	return roleARN, nil
}

// sameJSON reports whether two JSON documents decode to the same value.
func sameJSON(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

// rolePolicies are the documents of both roles.
type rolePolicies struct {
	Trust, Execution, Task, TaskDescribe string
}

// localPolicies renders the roles' documents from the templates in scripts/policies/, the
// files scripts/create-roles.sh renders for a deployment, so a least-privilege test of either
// proves the other. Of the execution role's templates the local run takes only
// execution-secretsmanager.json: it pulls no image from ECR and has no awslogs driver, so
// execution-pull-logs.json would grant nothing here, and it always keeps the credentials in
// Secrets Manager under the default key (no execution-ssm.json, no execution-kms.json). The
// task role gets task-dynamodb.json and, because the secret is in Secrets Manager,
// task-secrets-describe.json: the drift check's DescribeSecret and ListSecretVersionIds on that
// one secret, which return its metadata and never its value.
func localPolicies(account, secretARN, tableARN string) (rolePolicies, error) {
	var docs rolePolicies
	var err error
	if docs.Trust, err = scripts.Policy("trust-ecs-tasks", map[string]string{"ACCOUNT_ID": account}); err != nil {
		return docs, err
	}
	if docs.Execution, err = scripts.Policy("execution-secretsmanager", map[string]string{"SECRET_ARN": secretARN}); err != nil {
		return docs, err
	}
	if docs.Task, err = scripts.Policy("task-dynamodb", map[string]string{"TABLE_ARN": tableARN}); err != nil {
		return docs, err
	}
	if docs.TaskDescribe, err = scripts.Policy("task-secrets-describe", map[string]string{"SECRET_ARN": secretARN}); err != nil {
		return docs, err
	}
	return docs, nil
}
