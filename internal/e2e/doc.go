// Package e2e holds the end-to-end tests of the detector Lambda: the real
// bootstrap, built as for deployment, runs under the AWS Lambda Runtime
// Interface Emulator (see package rie) against dynalite for DynamoDB and
// goaws for SNS, and the tests check what subscribers receive and what the
// table holds. Package emu holds the harness these tests share with the
// reliability drills (internal/drills).
//
// The tests carry the build tag integration and need three variables, which
// scripts/test.sh sets; they fail when one is missing:
//
//	ANONWATCH_TEST_DYNAMODB  dynalite's endpoint, e.g. http://127.0.0.1:4567
//	ANONWATCH_TEST_SNS       goaws's endpoint, e.g. http://127.0.0.1:4100
//	ANONWATCH_BIN            the folder holding aws-lambda-rie
//
// Each test creates its own table, topic and queues, so tests run in
// parallel and against emulators that other packages' tests use too. The
// arm64 test runs the arm64 bootstrap under qemu-aarch64 when it is on PATH.
//
// The benchmarks measure cold start, warm invoke and peak memory through the
// emulator:
//
//	go test -tags integration -run '^$' -bench . -benchtime 10x ./internal/e2e/
package e2e
