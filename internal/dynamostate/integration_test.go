//go:build integration

package dynamostate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/detect/statetest"
	"github.com/anonwatch/anonwatch/internal/dynamostate"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// endpointEnv names the variable that points the integration tests at a
// DynamoDB endpoint, e.g. dynalite started by scripts/dynalite.sh.
const endpointEnv = "ANONWATCH_TEST_DYNAMODB"

var endpoint string

func TestMain(m *testing.M) {
	endpoint = os.Getenv(endpointEnv)
	if endpoint == "" {
		fmt.Fprintf(os.Stderr, "integration tests need %s (e.g. http://127.0.0.1:4567 from scripts/dynalite.sh start)\n", endpointEnv)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// newClient returns a client with the production options aimed at url.
func newClient(url string, extra ...func(*dynamodb.Options)) *dynamodb.Client {
	opts := append(dynamostate.ClientOptions(), func(o *dynamodb.Options) {
		o.Region = "us-east-1"
		o.BaseEndpoint = aws.String(url)
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})
	})
	return dynamodb.New(dynamodb.Options{}, append(opts, extra...)...)
}

// newTable creates a uniquely named table and returns its name.
func newTable(t testing.TB, client *dynamodb.Client) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "anonwatch-test-" + hex.EncodeToString(b[:])
	err := dynamostate.CreateTable(context.Background(), client, name)
	if err != nil && !errors.Is(err, dynamostate.ErrTTLUnsupported) {
		t.Fatalf("CreateTable: %v", err)
	}
	return name
}

func TestConformance(t *testing.T) {
	client := newClient(endpoint)
	for _, perItem := range []int{dynamostate.BatchesPerItem, 2} {
		t.Run(fmt.Sprintf("BatchesPerItem=%d", perItem), func(t *testing.T) {
			statetest.Run(t, func(t *testing.T, now func() time.Time) detect.State {
				return dynamostate.New(client, newTable(t, client), now,
					dynamostate.WithLease(statetest.Lease), dynamostate.WithBatchesPerItem(perItem))
			})
		})
	}
}

// TestProperty runs the detector over dynalite against the one-event-at-a-
// time oracle, with invocations on real concurrent goroutines sharing one
// table (statetest.Property). Shards of two batches exercise the
// multi-item buckets as well.
func TestProperty(t *testing.T) {
	client := newClient(endpoint)
	for _, tc := range []struct {
		perItem  int
		faults   float64
		backfill bool
	}{{dynamostate.BatchesPerItem, 0, false}, {2, 0, false}, {dynamostate.BatchesPerItem, 0.1, false}, {2, 0.05, true}} {
		perItem := tc.perItem
		t.Run(fmt.Sprintf("BatchesPerItem=%d/faults=%v/backfill=%v", perItem, tc.faults, tc.backfill), func(t *testing.T) {
			t.Parallel()
			cfg := statetest.PropertyEnv(t, statetest.PropertyConfig{Cases: 60, Seed: 2, Workers: 6, Events: 40, Faults: tc.faults, Backfill: tc.backfill})
			statetest.Property(t, func(t *testing.T, now func() time.Time) detect.State {
				return dynamostate.New(client, newTable(t, client), now,
					dynamostate.WithLease(statetest.Lease), dynamostate.WithBatchesPerItem(perItem))
			}, cfg)
		})
	}
}

func TestCreateTableTwice(t *testing.T) {
	client := newClient(endpoint)
	name := newTable(t, client)
	err := dynamostate.CreateTable(context.Background(), client, name)
	if err != nil && !errors.Is(err, dynamostate.ErrTTLUnsupported) {
		t.Fatalf("second CreateTable: %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), name) {
		t.Errorf("TTL warning %q does not name the table", err)
	}
}
