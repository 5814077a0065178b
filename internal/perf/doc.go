// Package perf measures the detector's resource envelope: how much memory
// the largest subscription delivery CloudWatch Logs can hand the function
// costs, and what the decoder's own bound admits in the worst case.
//
// It holds only tests. TestMemoryEnvelope (no build tag) runs each delivery
// through the function's in-process path (decode with the rules'
// pre-filter, aggregate, or the whole handler with in-memory state) in a
// fresh child process and reports the Go heap and the process's peak
// resident set; TestBootstrapPeakRSS (build tag integration) invokes the
// real bootstrap under the Lambda Runtime Interface Emulator, against a
// dynalite and a goaws it starts for itself, and reads the bootstrap's
// peak resident set. scripts/measure-memory.sh runs both and
// docs/performance.md records the figures.
//
// BenchmarkReplay times `anonwatch replay`, the built CLI as a whole
// process, over a generated day of a busy cluster (archive_test.go),
// beside the floor and the naive baseline; scripts/bench-replay.sh prints
// its table.
//
// BenchmarkFanin (build tag integration) is the organization deployment's
// load generator: N simulated clusters in several accounts, one address
// scanning them all, their deliveries as a CloudWatch Logs destination
// writes them to Kinesis, batched as the event source mapping batches
// them, through the real handler against a dynalite it starts; it prints
// throughput, DynamoDB calls per record, latency per invocation and the
// hottest partition keys (scripts/bench-fanin.sh, docs/scale.md).
// TestFaninKeysStayPerCluster checks on a small fan-in that no partition
// key serves more than one cluster.
package perf
