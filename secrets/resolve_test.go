package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/streammatch/streammatch/internal/mototest"

	"github.com/streammatch/streammatch/secrets/valuefrom"
)

// The values stored in moto. The failure tests assert that none of them, nor any piece of
// them a JSON decoder might quote, appears in an error.
const (
	consumerKeyV1 = "ck-v1-QmFzZTY0SXNOb3RFbmNyeXB0aW9u"
	consumerKeyV2 = "ck-v2-Um90YXRlZEF0TWlkbmlnaHQ"
	plainSecret   = "plain-text-secret-never-json"
	secureToken   = "secure-token-9f8e7d6c5b4a"
	plainSetting  = "plain-setting-value"
)

// awsFixture is what the integration tests create in moto.
type awsFixture struct {
	resolver     *Resolver
	twitterARN   string // full ARN of the JSON secret (rotated once)
	firstVersion string // version id of its first value
	plainARN     string // full ARN of a secret that is not JSON
	tokenARN     string // ARN of the SecureString parameter
	cfgRegion    string
}

func setupAWS(t *testing.T) awsFixture {
	t.Helper()
	srv := mototest.Start(t)
	cfg := srv.AWSConfig(t)
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(cfg)
	ps := ssm.NewFromConfig(cfg)

	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("streammatch/twitter"),
		// A string, a number, a nested object, an array, a null and a boolean, to pin how
		// the agent renders each with %v.
		SecretString: aws.String(`{"CONSUMERKEY":"` + consumerKeyV1 + `","COUNT":1234567,"PORT":5432,"RATIO":1.50,` +
			`"NESTED":{"b":1,"a":"x"},"LIST":[1,"two"],"NOTHING":null,"FLAG":true}`),
	})
	if err != nil {
		t.Fatalf("create JSON secret: %v", err)
	}
	// Rotation: the first value becomes AWSPREVIOUS, this one AWSCURRENT.
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     created.ARN,
		SecretString: aws.String(`{"CONSUMERKEY":"` + consumerKeyV2 + `"}`),
	}); err != nil {
		t.Fatalf("rotate JSON secret: %v", err)
	}
	plain, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("streammatch/plain"),
		SecretString: aws.String(plainSecret),
	})
	if err != nil {
		t.Fatalf("create plain secret: %v", err)
	}
	if _, err := ps.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/streammatch/prod/token"), Value: aws.String(secureToken), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatalf("put SecureString: %v", err)
	}
	if _, err := ps.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("plain-setting"), Value: aws.String(plainSetting), Type: ssmtypes.ParameterTypeString,
	}); err != nil {
		t.Fatalf("put String: %v", err)
	}
	return awsFixture{
		resolver:     NewResolver(cfg),
		twitterARN:   aws.ToString(created.ARN),
		firstVersion: aws.ToString(created.VersionId),
		plainARN:     aws.ToString(plain.ARN),
		tokenARN:     "arn:aws:ssm:" + cfg.Region + ":123456789012:parameter/streammatch/prod/token",
		cfgRegion:    cfg.Region,
	}
}

func TestResolver_ResolvesEveryValueFromForm(t *testing.T) {
	fx := setupAWS(t)
	partialARN := fx.twitterARN[:len(fx.twitterARN)-len("-AbCdEf")] // Secrets Manager's suffix is '-' and six characters
	tests := []struct {
		name      string
		valueFrom string
		want      string
	}{
		{"full ARN, whole secret", fx.twitterARN, `{"CONSUMERKEY":"` + consumerKeyV2 + `"}`},
		{"partial ARN with JSON key", partialARN + ":CONSUMERKEY::", consumerKeyV2},
		{"JSON key, current version", fx.twitterARN + ":CONSUMERKEY::", consumerKeyV2},
		{"previous stage after rotation", fx.twitterARN + ":CONSUMERKEY:AWSPREVIOUS:", consumerKeyV1},
		{"version id", fx.twitterARN + ":CONSUMERKEY::" + fx.firstVersion, consumerKeyV1},
		{"whole previous version", fx.twitterARN + "::AWSPREVIOUS:", ""}, // checked below: starts with {"CONSUMERKEY"
		{"number renders as float64 %v", fx.twitterARN + ":COUNT:AWSPREVIOUS:", "1.234567e+06"},
		{"small integer", fx.twitterARN + ":PORT:AWSPREVIOUS:", "5432"},
		{"decimal loses its trailing zero", fx.twitterARN + ":RATIO:AWSPREVIOUS:", "1.5"},
		{"nested object renders in Go map syntax", fx.twitterARN + ":NESTED:AWSPREVIOUS:", "map[a:x b:1]"},
		{"array renders in Go slice syntax", fx.twitterARN + ":LIST:AWSPREVIOUS:", "[1 two]"},
		{"null renders as <nil>", fx.twitterARN + ":NOTHING:AWSPREVIOUS:", "<nil>"},
		{"boolean", fx.twitterARN + ":FLAG:AWSPREVIOUS:", "true"},
		{"plain-text secret", fx.plainARN, plainSecret},
		{"SecureString by name comes decrypted", "/streammatch/prod/token", secureToken},
		{"SecureString by ARN", fx.tokenARN, secureToken},
		{"String parameter by flat name", "plain-setting", plainSetting},
	}
	var secrets []Secret
	for i, tt := range tests {
		secrets = append(secrets, Secret{Name: fmt.Sprintf("VAR_%d", i), ValueFrom: tt.valueFrom})
	}
	// One call, as the agent resolves a whole container at once.
	env, err := fx.resolver.Resolve(context.Background(), secrets)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(env) != len(tests) {
		t.Fatalf("Resolve returned %d entries, want %d", len(env), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if env[i].Name != secrets[i].Name {
				t.Fatalf("entry %d is %s, want %s (order must be kept)", i, env[i].Name, secrets[i].Name)
			}
			got := env[i].Value
			if tt.name == "whole previous version" {
				if !strings.HasPrefix(got, `{"CONSUMERKEY":"`+consumerKeyV1+`"`) {
					t.Fatalf("valueFrom %s: got a value of %d bytes that is not the first version's JSON", tt.valueFrom, len(got))
				}
				return
			}
			if got != tt.want {
				t.Fatalf("valueFrom %s:\n got  %q\n want %q", tt.valueFrom, got, tt.want)
			}
		})
	}
}

func TestResolver_BatchesMoreThanTenParameters(t *testing.T) {
	srv := mototest.Start(t)
	cfg := srv.AWSConfig(t)
	ps := ssm.NewFromConfig(cfg)
	var secrets []Secret
	for i := range 23 {
		name := fmt.Sprintf("/batch/p%02d", i)
		if _, err := ps.PutParameter(context.Background(), &ssm.PutParameterInput{
			Name: aws.String(name), Value: aws.String(fmt.Sprintf("value-%02d", i)), Type: ssmtypes.ParameterTypeSecureString,
		}); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
		secrets = append(secrets, Secret{Name: fmt.Sprintf("P%02d", i), ValueFrom: name})
	}
	// moto rejects a GetParameters call with more than ten names, as AWS does.
	env, err := NewResolver(cfg).Resolve(context.Background(), secrets)
	if err != nil {
		t.Fatalf("Resolve 23 parameters: %v", err)
	}
	for i, e := range env {
		if want := fmt.Sprintf("value-%02d", i); e.Value != want {
			t.Errorf("%s = %q, want %q", e.Name, e.Value, want)
		}
	}
}

func TestResolver_FailuresUseTheAgentWordingAndNeverAValue(t *testing.T) {
	fx := setupAWS(t)
	missingSecret := "arn:aws:secretsmanager:" + fx.cfgRegion + ":123456789012:secret:streammatch/absent-AbCdEf"
	secrets := []Secret{
		{Name: "CONSUMER_KEY", ValueFrom: fx.twitterARN + ":CONSUMERKEY::"}, // fine
		{Name: "MISSING_KEY", ValueFrom: fx.twitterARN + ":ACCESSTOKEN::"},
		{Name: "NOT_JSON", ValueFrom: fx.plainARN + ":password::"},
		{Name: "MISSING_SECRET", ValueFrom: missingSecret},
		{Name: "MISSING_PARAMETER", ValueFrom: "/streammatch/prod/absent"},
		{Name: "MISSING_PARAMETER_ARN", ValueFrom: "arn:aws:ssm:" + fx.cfgRegion + ":123456789012:parameter/streammatch/absent"},
		{Name: "TOKEN", ValueFrom: "/streammatch/prod/token"}, // fine
		{Name: "BROKEN", ValueFrom: fx.twitterARN + ":CONSUMERKEY"},
	}
	env, err := fx.resolver.Resolve(context.Background(), secrets)
	if err == nil {
		t.Fatalf("Resolve succeeded with %d entries, want a *ResolveError", len(env))
	}
	if env != nil {
		t.Errorf("Resolve returned %d entries with its error, want none: the task must not start", len(env))
	}
	var re *ResolveError
	if !errors.As(err, &re) {
		t.Fatalf("error is %T, want *ResolveError: %v", err, err)
	}
	msg := err.Error()
	t.Logf("error: %s", msg) // safe to print: that is what this test proves

	for _, value := range []string{consumerKeyV1, consumerKeyV2, plainSecret, secureToken, plainSetting,
		"plain-text", "invalid character", "looking for beginning of value"} {
		if strings.Contains(msg, value) {
			t.Errorf("error contains %q, which is (part of) a stored value or a JSON decoder message", value)
		}
	}
	const prefix = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("error does not begin with %q:\n%s", prefix, msg)
	}

	wantFailures := []struct {
		name  string
		store valuefrom.Store
		parts []string
	}{
		{"MISSING_KEY", valuefrom.SecretsManager, []string{
			"unable to retrieve secret from asm: service call has been retried 1 time(s): secret " + fx.twitterARN,
			"retrieved secret from Secrets Manager did not contain json key ACCESSTOKEN"}},
		{"NOT_JSON", valuefrom.SecretsManager, []string{fx.plainARN, "is not a JSON object, so it has no json key password"}},
		{"MISSING_SECRET", valuefrom.SecretsManager, []string{"failed to fetch secret " + missingSecret + " from secrets manager", "ResourceNotFoundException"}},
		{"MISSING_PARAMETER", valuefrom.ParameterStore, []string{
			"unable to retrieve secrets from ssm: service call has been retried 1 time(s)",
			"fetching secret data from SSM Parameter Store in " + fx.cfgRegion + ": invalid parameters: /streammatch/prod/absent"}},
		{"MISSING_PARAMETER_ARN", valuefrom.ParameterStore, []string{"invalid parameters: arn:aws:ssm:" + fx.cfgRegion + ":123456789012:parameter/streammatch/absent"}},
		{"BROKEN", valuefrom.SecretsManager, []string{"trying to retrieve secret with value " + fx.twitterARN + ":CONSUMERKEY resulted in error", "exactly three fields"}},
	}
	if len(re.Failures) != len(wantFailures) {
		var names []string
		for _, f := range re.Failures {
			names = append(names, f.Name)
		}
		t.Fatalf("failures for %v, want one for each of the %d broken references", names, len(wantFailures))
	}
	for i, want := range wantFailures {
		f := re.Failures[i]
		if f.Name != want.name || f.Store != want.store {
			t.Errorf("failure %d is %s in %s, want %s in %s", i, f.Name, f.Store, want.name, want.store)
		}
		for _, part := range want.parts {
			if !strings.Contains(f.String(), part) {
				t.Errorf("failure %s:\n got  %s\n want it to contain %q", f.Name, f.String(), part)
			}
			if !strings.Contains(msg, part) {
				t.Errorf("error does not contain %q", part)
			}
		}
	}
	var notFound *smtypes.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("errors.As(err, *ResourceNotFoundException) = false, want the missing secret's service error")
	}
}
