package emu

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Moto points the SDK's standard configuration in this process at the moto
// server (CloudWatch Logs and S3) whose endpoint ANONWATCH_TEST_MOTO holds,
// as scripts/test.sh sets it, with AWSEnv's credentials and region, and
// returns that configuration. The test skips when the variable is unset.
// It sets the environment, not options, so that code under test that loads
// its own configuration, as the CLI does, reaches moto too: t cannot be
// parallel.
func Moto(t testing.TB) aws.Config {
	t.Helper()
	url := os.Getenv("ANONWATCH_TEST_MOTO")
	if url == "" {
		t.Skip("ANONWATCH_TEST_MOTO is not set: moto 5.2.1 is missing (scripts/moto.sh check says why)")
	}
	for _, kv := range append(AWSEnv(), "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS="+url, "AWS_ENDPOINT_URL_S3="+url) {
		if k, v, _ := strings.Cut(kv, "="); k != "PATH" {
			t.Setenv(k, v)
		}
	}
	// A developer's own profile or session must not reach moto.
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
