package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// These tests inject faults an emulator does not produce on demand. The behaviour against a
// real protocol peer is covered by resolve_test.go on moto.

// fakeSecretsManager answers GetSecretValue from a map keyed by SecretId, failing the first
// failFirst calls, and records every request.
type fakeSecretsManager struct {
	mu        sync.Mutex
	values    map[string]*secretsmanager.GetSecretValueOutput
	failFirst int
	calls     []secretsmanager.GetSecretValueInput
}

func (f *fakeSecretsManager) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, *in)
	if len(f.calls) <= f.failFirst {
		return nil, errors.New("ThrottlingException: Rate exceeded")
	}
	out, ok := f.values[aws.ToString(in.SecretId)]
	if !ok {
		return nil, errors.New("ResourceNotFoundException: Secrets Manager can't find the specified secret.")
	}
	return out, nil
}

// fakeParameterStore answers GetParameters by name only, like moto, and records every call.
type fakeParameterStore struct {
	mu     sync.Mutex
	values map[string]string
	calls  []ssm.GetParametersInput
}

func (f *fakeParameterStore) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, *in)
	if len(in.Names) > maxParametersPerCall {
		return nil, fmt.Errorf("ValidationException: %d names, at most 10", len(in.Names))
	}
	out := &ssm.GetParametersOutput{}
	for _, name := range in.Names {
		if v, ok := f.values[name]; ok {
			out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(name), Value: aws.String(v)})
		} else {
			out.InvalidParameters = append(out.InvalidParameters, name)
		}
	}
	return out, nil
}

type fakeIdentity struct{ account string }

func (f fakeIdentity) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String(f.account)}, nil
}

const fakeARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf"

func TestResolver_FetchesOneSecretVersionOnceForManyKeys(t *testing.T) {
	sm := &fakeSecretsManager{values: map[string]*secretsmanager.GetSecretValueOutput{
		fakeARN: {SecretString: aws.String(`{"A":"1","B":"2","C":"3"}`)},
	}}
	r := newResolver(sm, &fakeParameterStore{}, fakeIdentity{}, "us-east-1")
	env, err := r.Resolve(context.Background(), []Secret{
		{Name: "A", ValueFrom: fakeARN + ":A::"},
		{Name: "B", ValueFrom: fakeARN + ":B::"},
		{Name: "C", ValueFrom: fakeARN + ":C::"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{env[0].Value, env[1].Value, env[2].Value}; strings.Join(got, ",") != "1,2,3" {
		t.Errorf("values %q, want [1 2 3]", got)
	}
	if len(sm.calls) != 1 {
		t.Fatalf("GetSecretValue called %d times, want 1 for three keys of one version", len(sm.calls))
	}
	if in := sm.calls[0]; in.VersionStage != nil || in.VersionId != nil {
		t.Errorf("request carries stage %v and id %v, want neither (the service defaults to AWSCURRENT, as for the agent)",
			aws.ToString(in.VersionStage), aws.ToString(in.VersionId))
	}
}

func TestResolver_RetriesAFailedCallOnce(t *testing.T) {
	tests := []struct {
		name      string
		failFirst int
		wantErr   bool
		wantCalls int
	}{
		{"a transient failure is retried", 1, false, 2},
		{"a second failure stops the task", 2, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := &fakeSecretsManager{failFirst: tt.failFirst, values: map[string]*secretsmanager.GetSecretValueOutput{
				fakeARN: {SecretString: aws.String(`{"K":"v"}`)},
			}}
			r := newResolver(sm, &fakeParameterStore{}, fakeIdentity{}, "us-east-1")
			_, err := r.Resolve(context.Background(), []Secret{{Name: "K", ValueFrom: fakeARN + ":K::"}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Resolve error = %v, want error %v", err, tt.wantErr)
			}
			if len(sm.calls) != tt.wantCalls {
				t.Errorf("GetSecretValue called %d times, want %d", len(sm.calls), tt.wantCalls)
			}
			if err != nil && !strings.Contains(err.Error(), "service call has been retried 1 time(s): failed to fetch secret "+fakeARN+" from secrets manager: ThrottlingException") {
				t.Errorf("error = %v, want the retry count and the service error", err)
			}
		})
	}
}

func TestResolver_RejectsBinarySecrets(t *testing.T) {
	sm := &fakeSecretsManager{values: map[string]*secretsmanager.GetSecretValueOutput{
		fakeARN: {SecretBinary: []byte("binary-value")},
	}}
	r := newResolver(sm, &fakeParameterStore{}, fakeIdentity{}, "us-east-1")
	_, err := r.Resolve(context.Background(), []Secret{{Name: "BIN", ValueFrom: fakeARN}})
	if err == nil || !strings.Contains(err.Error(), "has no SecretString") {
		t.Fatalf("Resolve error = %v, want a binary secret to be refused", err)
	}
	if strings.Contains(err.Error(), "binary-value") {
		t.Errorf("error contains the secret's bytes: %v", err)
	}
}

func TestResolver_BatchesParametersByTen(t *testing.T) {
	ps := &fakeParameterStore{values: map[string]string{}}
	var secrets []Secret
	for i := range 23 {
		name := fmt.Sprintf("/p/%02d", i)
		ps.values[name] = "v" + name
		secrets = append(secrets, Secret{Name: fmt.Sprintf("P%02d", i), ValueFrom: name})
	}
	// A repeated name is asked for once.
	secrets = append(secrets, Secret{Name: "AGAIN", ValueFrom: "/p/00"})
	r := newResolver(&fakeSecretsManager{}, ps, fakeIdentity{}, "us-east-1")
	env, err := r.Resolve(context.Background(), secrets)
	if err != nil {
		t.Fatal(err)
	}
	if env[23].Value != "v/p/00" {
		t.Errorf("AGAIN = %q, want v/p/00", env[23].Value)
	}
	var sizes []int
	for _, c := range ps.calls {
		sizes = append(sizes, len(c.Names))
		if !aws.ToBool(c.WithDecryption) {
			t.Errorf("GetParameters without WithDecryption: SecureString values would arrive encrypted")
		}
	}
	if fmt.Sprint(sizes) != "[10 10 3]" {
		t.Errorf("GetParameters batch sizes %v, want [10 10 3]", sizes)
	}
}

func TestResolver_AsksForAParameterARNByNameOnlyInTheCallersAccount(t *testing.T) {
	tests := []struct {
		name      string
		account   string
		wantErr   bool
		wantCalls int
	}{
		{"own account: retried by name", "123456789012", false, 2},
		// One call per attempt: the first and the retry both ask for the ARN only.
		{"other account: never read by name", "999999999999", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := &fakeParameterStore{values: map[string]string{"/app/token": "t"}}
			r := newResolver(&fakeSecretsManager{}, ps, fakeIdentity{account: tt.account}, "us-east-1")
			env, err := r.Resolve(context.Background(), []Secret{{Name: "T", ValueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/app/token"}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Resolve = %v, %v; want error %v", env, err, tt.wantErr)
			}
			if len(ps.calls) == 0 || ps.calls[0].Names[0] != "arn:aws:ssm:us-east-1:123456789012:parameter/app/token" {
				t.Fatalf("GetParameters calls %+v, want the first to ask for the ARN as written, as the agent does", ps.calls)
			}
			if len(ps.calls) != tt.wantCalls {
				t.Errorf("GetParameters called %d times, want %d", len(ps.calls), tt.wantCalls)
			}
			if tt.wantErr {
				for _, c := range ps.calls {
					if c.Names[0] == "/app/token" {
						t.Errorf("asked for /app/token by name for another account's ARN")
					}
				}
			}
		})
	}
}

func TestResolver_StopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sm := &fakeSecretsManager{values: map[string]*secretsmanager.GetSecretValueOutput{fakeARN: {SecretString: aws.String("v")}}}
	r := newResolver(sm, &fakeParameterStore{}, fakeIdentity{}, "us-east-1")
	if _, err := r.Resolve(ctx, []Secret{{Name: "V", ValueFrom: fakeARN}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Resolve after cancel = %v, want context.Canceled", err)
	}
}

func TestJSONKeyValue_RendersLikeTheAgent(t *testing.T) {
	tests := []struct {
		name, secret, key string
		want              string
		wantReason        string
	}{
		{"string", `{"k":"v"}`, "k", "v", ""},
		{"integer", `{"k":42}`, "k", "42", ""},
		{"large integer uses exponent", `{"k":1234567}`, "k", "1.234567e+06", ""},
		{"twenty digits lose precision", `{"k":12345678901234567890}`, "k", "1.2345678901234567e+19", ""},
		{"decimal", `{"k":0.10}`, "k", "0.1", ""},
		{"tiny", `{"k":0.00001}`, "k", "1e-05", ""},
		{"object", `{"k":{"z":[1,2],"a":null}}`, "k", "map[a:<nil> z:[1 2]]", ""},
		{"empty string", `{"k":""}`, "k", "", ""},
		{"duplicate key: last wins", `{"k":"first","k":"last"}`, "k", "last", ""},
		{"missing key", `{"K":"v"}`, "k", "", "did not contain json key k"},
		{"JSON null secret has no keys", `null`, "k", "", "did not contain json key k"},
		{"not JSON", `s3cr3t`, "k", "", "is not a JSON object"},
		{"JSON array", `["s3cr3t"]`, "k", "", "is not a JSON object"},
		{"truncated JSON", `{"k":"s3cr3t`, "k", "", "is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := jsonKeyValue(tt.secret, tt.key)
			if got != tt.want || !strings.Contains(reason, tt.wantReason) || (tt.wantReason == "") != (reason == "") {
				t.Fatalf("jsonKeyValue(%s, %q) = %q, %q; want %q, reason containing %q", tt.secret, tt.key, got, reason, tt.want, tt.wantReason)
			}
			if strings.Contains(reason, "s3cr3t") || strings.Contains(reason, "'s'") {
				t.Errorf("reason %q quotes the secret", reason)
			}
		})
	}
}

func TestEnvVar_PrintingHidesTheValue(t *testing.T) {
	env := []EnvVar{{Name: "TOKEN", Value: "s3cr3t"}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(format, env); strings.Contains(got, "s3cr3t") {
			t.Errorf("Sprintf(%q) = %s, shows the value", format, got)
		}
	}
}
