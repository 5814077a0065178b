// Package drills holds anonwatch's reliability drills: end-to-end tests that
// run the real detector bootstrap under the AWS Lambda Runtime Interface
// Emulator (package rie) against dynalite and goaws, with a fault-injecting
// proxy (package faultproxy) between the function and each emulator, and
// check what users rely on when things fail: DynamoDB counts stay exact,
// every finding is delivered, and each only once, except in the duplicate
// window the README documents. The harness they share with the end-to-end
// tests (building the bootstrap, the function's environment, dynalite and
// goaws processes and clients) is package emu.
//
// The drills are:
//
//   - TestFaultMatrix: every kind of fault at every position among one
//     invocation's HTTP calls, once (the SDK retries it) and persistently
//     (the invocation fails and is invoked again, as Lambda retries);
//   - TestConcurrentInvocations: eight function instances invoked at once
//     with overlapping batches for the same addresses;
//   - TestHostileInput: broken and hostile subscription events, with the
//     function's peak memory;
//   - TestFloodDrill: a sustained address-rotation flood, with the
//     notification budgets and without, counting the messages per minute;
//   - TestDeadLetter: Lambda's asynchronous retries and on-failure
//     destination, emulated from template.yaml, and the replay of a
//     dead-lettered event.
//
// They carry the build tag integration and start their own emulators on
// free loopback ports, so they neither need nor disturb the ones
// scripts/test.sh starts. They need ANONWATCH_BIN, the folder holding
// aws-lambda-rie and goaws (scripts/tools.sh installs both), and node with
// dynalite installed in tools/node (ANONWATCH_DYNALITE_CLI may name its
// cli.js instead); they fail when one is missing. scripts/drills.sh runs
// them; docs/reliability.md shows and explains their results. With -update,
// TestFaultMatrix rewrites the matrix in docs/reliability.md.
package drills
